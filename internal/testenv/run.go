package testenv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"
)

// Run runs prog with home as $QMAILHOME (added to this process's
// environment) and stdin as its input (nil: none; an *os.File is handed
// over as is, so cdbget can seek it), and returns what it wrote and its
// exit code. A program that cannot be started fails the test.
func Run(t testing.TB, home string, stdin io.Reader, prog string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stdin = stdin
	var out, errout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errout
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), errout.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", prog, err)
	}
	return out.String(), errout.String(), 0
}

// OpenFile opens path for reading until the test ends.
func OpenFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
