package testenv

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The stand-in stores what it reads on fd 0 and fd 1 and exits with the
// code it was made with, as qmail-queue's callers expect.
func TestCaptureQueue(t *testing.T) {
	t.Parallel()
	for _, code := range []int{0, 53} {
		q := CaptureQueue(t, code)
		if q.Ran(t) {
			t.Fatal("Ran before the stand-in was started")
		}
		envR, envW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(q.Program)
		cmd.Stdin = strings.NewReader("Subject: x\n\nbody\n")
		cmd.Stdout = envR
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		envR.Close()
		envW.WriteString("Fa@b\x00Tc@d\x00\x00")
		envW.Close()
		err = cmd.Wait()
		var exit *exec.ExitError
		if got := 0; err != nil {
			if !errors.As(err, &exit) {
				t.Fatal(err)
			}
			got = exit.ExitCode()
			if got != code {
				t.Errorf("exit %d, want %d", got, code)
			}
		} else if code != 0 {
			t.Errorf("exit 0, want %d", code)
		}
		c := q.Single(t)
		if c.Message != "Subject: x\n\nbody\n" || c.Envelope != "Fa@b\x00Tc@d\x00\x00" || c.Pid != strconv.Itoa(cmd.Process.Pid) {
			t.Errorf("captured %+v (pid %d)", c, cmd.Process.Pid)
		}
		if !q.Ran(t) {
			t.Error("Ran is false after a capture")
		}
	}
}
