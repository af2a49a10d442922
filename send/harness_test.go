package send_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsend"
)

var programs = []string{"qmail-queue", "qmail-start", "qmail-send", "qmail-lspawn", "qmail-rspawn", "qmail-clean", "qmail-local"}

// newHome makes a test home for the queue manager, with a QMAILREMOTE
// script that accepts every message and keeps a copy in remote-out/.
func newHome(t *testing.T) string {
	t.Helper()
	home := testenv.NewHome(t, programs...)
	testsend.WriteFakeRemote(t, home, "1.2.3.4")
	return home
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func env(home string) []string {
	return append(os.Environ(), "QMAILHOME="+home, "QMAILREMOTE="+filepath.Join(home, "bin", "fake-remote"))
}

// enqueue queues a message with the real qmail-queue.
func enqueue(t *testing.T, home string, attr *syscall.SysProcAttr, msg, sender string, recips ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-queue"))
	cmd.Env = env(home)
	cmd.SysProcAttr = attr
	testsend.Enqueue(t, cmd, msg, sender, recips...)
}

// start runs qmail-start, which becomes qmail-send; the queues of these
// tests may hold messages logged before (Resumed).
func start(t *testing.T, home string, attr *syscall.SysProcAttr) *testsend.Manager {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-start"), "./Maildir/")
	cmd.Env = env(home)
	cmd.SysProcAttr = attr
	return testsend.Start(t, cmd, true)
}

func must(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

// onlyQueueFile is the one file of queue/dir/*/* (a message's info/N or
// channel file): its content and mtime.
func onlyQueueFile(t *testing.T, home, dir string) (content string, mtime time.Time) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(home, "queue", dir, "*", "*"))
	must(t, len(files) == 1, "%s files: %v", dir, files)
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b), st.ModTime()
}
