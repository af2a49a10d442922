package testsmtp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// RunRemote runs the built qmail-remote in home with msg as fd 0 (a
// regular file, as qmail-rspawn gives it) and returns its reports, the
// NUL-terminated strings it writes. It fails the test unless
// qmail-remote exits 0 with NUL-terminated reports.
func RunRemote(t testing.TB, home, msg string, args ...string) []string {
	t.Helper()
	msgPath := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(msgPath, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(msgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command(testenv.Program(t, "qmail-remote"), args...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qmail-remote %q: %v (stderr %q)", args, err, stderr.String())
	}
	if len(out) == 0 || out[len(out)-1] != 0 {
		t.Fatalf("qmail-remote %q: reports not NUL-terminated: %q", args, out)
	}
	return strings.Split(string(out[:len(out)-1]), "\x00")
}
