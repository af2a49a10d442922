package queue_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func present(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestQmailCleanProgram(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-clean")
	qdir := filepath.Join(home, "queue")
	for _, p := range []string{queue.MessPath(qdir, 100), queue.FlatPath(qdir, "intd", 100),
		queue.MessPath(qdir, 300), queue.FlatPath(qdir, "intd", 300), queue.FlatPath(qdir, "todo", 300)} {
		writeFile(t, p)
	}
	// intd/400 cannot be unlinked: it is a directory.
	if err := os.Mkdir(queue.FlatPath(qdir, "intd", 400), 0o700); err != nil {
		t.Fatal(err)
	}
	stalePid := filepath.Join(qdir, "pid", "4242.1700000000.1")
	freshPid := filepath.Join(qdir, "pid", "4243.1700000000.1")
	writeFile(t, stalePid)
	writeFile(t, freshPid)
	old := time.Now().Add(-queue.StaleAge - time.Minute)
	if err := os.Chtimes(stalePid, old, old); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(filepath.Join(home, "bin", "qmail-clean"))
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stdin = strings.NewReader("foop/100\x00todo/300\x00foop/555\x00todo/400\x00todo/12x\x00foop/\x00" +
		strings.Repeat("1", 200) + "\x00todo/3")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("qmail-clean: %v", err)
	}
	if want := "+++!xxx"; out.String() != want {
		t.Errorf("replies %q, want %q", out.String(), want)
	}
	for _, gone := range []string{queue.MessPath(qdir, 100), queue.FlatPath(qdir, "intd", 100),
		queue.FlatPath(qdir, "intd", 300), queue.FlatPath(qdir, "todo", 300), stalePid} {
		if present(gone) {
			t.Errorf("%s kept", gone)
		}
	}
	for _, kept := range []string{queue.MessPath(qdir, 300), freshPid} {
		if !present(kept) {
			t.Errorf("%s removed", kept)
		}
	}
}

func TestQmailCleanExitCodes(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-clean")
	prog := filepath.Join(home, "bin", "qmail-clean")

	t.Run("no queue", func(t *testing.T) {
		cmd := exec.Command(prog)
		cmd.Env = append(os.Environ(), "QMAILHOME="+filepath.Join(home, "nowhere"))
		if code := runCode(t, cmd); code != 111 {
			t.Errorf("exit %d without a home, want 111", code)
		}
	})
	t.Run("reply fails", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.Close() // nobody reads the replies
		defer w.Close()
		cmd := exec.Command(prog)
		cmd.Env = append(os.Environ(), "QMAILHOME="+home)
		cmd.Stdin = strings.NewReader("foop/1\x00")
		cmd.Stdout = w
		if code := runCode(t, cmd); code != 100 {
			t.Errorf("exit %d when the reply cannot be written, want 100", code)
		}
	})
}

func runCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode()
}
