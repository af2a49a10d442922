package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

func run(t *testing.T, home, prog string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return stdout.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", prog, err)
	}
	return stdout.String(), 0
}

func TestGetPW(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-getpw")
	prog := filepath.Join(home, "bin", "qmail-getpw")
	if out, code := run(t, home, prog); code != 100 || out != "" {
		t.Errorf("without an argument: exit %d, output %q; want 100", code, out)
	}

	// In an unprivileged home the alias account is the caller with home
	// $QMAILHOME/alias. root (uid 0) and system accounts whose home they
	// do not own never match, so these all go to the alias account.
	name := strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	alias := name + "\x00" + strconv.Itoa(os.Getuid()) + "\x00" + strconv.Itoa(os.Getgid()) + "\x00" + filepath.Join(home, "alias") + "\x00-\x00"
	for _, local := range []string{"root", "Root-Foo", "postmaster", "", "no-such-user-goqmail-x"} {
		out, code := run(t, home, prog, local)
		if code != 0 || out != alias+local+"\x00" {
			t.Errorf("qmail-getpw %q = %q exit %d, want %q", local, out, code, alias+local+"\x00")
		}
	}
}
