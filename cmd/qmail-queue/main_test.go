package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

// messFiles returns the files under queue/mess.
func messFiles(t *testing.T, qdir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(qdir, "mess", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// A signal that only a bug or someone else sends ends qmail-queue with
// 81, "qq internal bug", as qmail-queue's sig_bugcatch does, and the
// message is not queued. The signal comes while qmail-queue waits for
// the rest of the message: by then its mess/ file exists, so the handler
// is in place (it is installed before the queue is touched).
func TestBugSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGILL, syscall.SIGABRT, syscall.SIGFPE, syscall.SIGBUS, syscall.SIGSYS} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			home := testenv.NewHome(t, "qmail-queue")
			qdir := filepath.Join(home, "queue")
			msgR, msgW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer msgW.Close()
			envR, envW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			envW.Close() // never read: qmail-queue is stopped in the message
			cmd := exec.Command(filepath.Join(home, "bin", "qmail-queue"))
			cmd.Env = append(os.Environ(), "QMAILHOME="+home)
			cmd.Stdin, cmd.Stdout = msgR, envR
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			msgR.Close()
			envR.Close()
			if _, err := msgW.WriteString("Subject: half a message\n\n"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			for len(messFiles(t, qdir)) == 0 {
				select {
				case err := <-done:
					t.Fatalf("qmail-queue ended before it made its mess/ file: %v", err)
				case <-time.After(5 * time.Millisecond):
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err = <-done
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() || ws.ExitStatus() != 81 {
				t.Errorf("after %v: %v, want exit status 81", sig, cmd.ProcessState)
			}
			if todo, _ := filepath.Glob(filepath.Join(qdir, "todo", "*")); len(todo) != 0 {
				t.Errorf("after %v the message was committed: %v", sig, todo)
			}
		})
	}
}
