package queue_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

// These tests set $QMAILHOME and $QMAILQUEUE, which queue.Client reads
// from the environment, so they do not run in parallel.

func TestClientRealQueue(t *testing.T) {
	home := testenv.NewHome(t, "qmail-queue")
	qdir := filepath.Join(home, "queue")
	t.Setenv("QMAILHOME", home)
	t.Setenv("QMAILQUEUE", "")

	c, err := queue.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("a line of the message\n", 10000) // more than a pipe buffer
	c.WriteString(body[:1000])
	c.Write([]byte(body[1000:]))
	if err := c.Close("s@example.org", []string{"r1@example.org", "r2@example.net"}); err != nil {
		t.Fatalf("Close: %v", err)
	}
	files := listQueue(t, qdir)
	if len(files["todo"]) != 1 {
		t.Fatalf("queue files %v", files)
	}
	todo, err := os.ReadFile(filepath.Join(qdir, "todo", files["todo"][0]))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("u%d\x00p%d\x00Fs@example.org\x00Tr1@example.org\x00Tr2@example.net\x00", os.Getuid(), c.Pid())
	if string(todo) != want {
		t.Errorf("todo %q, want %q", todo, want)
	}
	id, _ := strconv.ParseUint(files["todo"][0], 10, 64)
	mess, err := os.ReadFile(queue.MessPath(qdir, id))
	if err != nil {
		t.Fatal(err)
	}
	if _, got, _ := strings.Cut(string(mess), "\n"); got != body {
		t.Errorf("queued message of %d bytes differs from the %d sent", len(got), len(body))
	}
}

func TestClientRealQueueRefusals(t *testing.T) {
	home := testenv.NewHome(t, "qmail-queue")
	qdir := filepath.Join(home, "queue")
	t.Setenv("QMAILHOME", home)
	t.Setenv("QMAILQUEUE", "")
	tests := []struct {
		name string
		fail bool
		rcpt string
		code int
		perm bool
		text string
	}{
		{"address too long", false, strings.Repeat("r", queue.MaxAddr), 11, true, "envelope address too long for qq (#5.1.3)"},
		{"caller failure", true, "r@example.org", 54, false, "qq read error (#4.3.0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := queue.Open(home)
			if err != nil {
				t.Fatal(err)
			}
			c.WriteString("Subject: x\n\nbody\n")
			if tt.fail {
				c.Fail(errors.New("client went away"))
			}
			err = c.Close("s@example.org", []string{tt.rcpt})
			var qe *queue.Error
			if !errors.As(err, &qe) {
				t.Fatalf("Close: %v, want a *queue.Error", err)
			}
			if qe.ExitCode != tt.code || qe.Permanent != tt.perm || qe.Text != tt.text {
				t.Errorf("Close: %+v, want code %d permanent %v %q", qe, tt.code, tt.perm, tt.text)
			}
			assertEmptyQueue(t, qdir)
		})
	}
}

// fakeQueue is a $QMAILQUEUE program: it keeps fd 0 and fd 1 in the
// directory $QQ_OUT and exits $QQ_EXIT, or dies of SIGKILL for "kill".
const fakeQueue = `#!/bin/sh
if [ -n "$QQ_EARLY" ]; then exit "$QQ_EARLY"; fi
cat > "$QQ_OUT/message" || exit 54
cat <&1 > "$QQ_OUT/envelope" || exit 54
if [ "$QQ_EXIT" = kill ]; then kill -9 $$; fi
exit "$QQ_EXIT"
`

func TestClientQMAILQUEUE(t *testing.T) {
	home := testenv.NewHome(t)
	if err := os.WriteFile(filepath.Join(home, "bin", "fake-queue"), []byte(fakeQueue), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("QMAILHOME", home)
	// Relative to the qmail home, as qmail's programs run it.
	t.Setenv("QMAILQUEUE", "bin/fake-queue")
	tests := []struct {
		exit string
		code int
		perm bool
		text string // "" for success
	}{
		{"0", 0, false, ""},
		{"11", 11, true, "envelope address too long for qq (#5.1.3)"},
		{"12", 12, true, "qq permanent problem (#5.3.0)"},
		{"31", 31, true, "mail server permanently rejected message (#5.3.0)"},
		{"40", 40, true, "qq permanent problem (#5.3.0)"},
		{"51", 51, false, "qq out of memory (#4.3.0)"},
		{"52", 52, false, "qq timeout (#4.3.0)"},
		{"53", 53, false, "qq write error or disk full (#4.3.0)"},
		{"54", 54, false, "qq read error (#4.3.0)"},
		{"61", 61, false, "qq trouble in home directory (#4.3.0)"},
		{"66", 66, false, "qq trouble creating files in queue (#4.3.0)"},
		{"71", 71, false, "mail server temporarily rejected message (#4.3.0)"},
		{"74", 74, false, "communication with mail server failed (#4.4.2)"},
		{"75", 75, false, "qq temporary problem (#4.3.0)"},
		{"81", 81, false, "qq internal bug (#4.3.0)"},
		{"91", 91, false, "qq internal bug (#4.3.0)"},
		{"kill", -1, false, "qq crashed (#4.3.0)"},
	}
	for _, tt := range tests {
		t.Run("exit "+tt.exit, func(t *testing.T) {
			out := t.TempDir()
			t.Setenv("QQ_OUT", out)
			t.Setenv("QQ_EXIT", tt.exit)
			c, err := queue.Open(home)
			if err != nil {
				t.Fatal(err)
			}
			msg := "Subject: " + tt.exit + "\n\nbody\x00\n"
			c.WriteString(msg)
			err = c.Close("s@x", []string{"a@y", "b@z"})
			if tt.text == "" {
				if err != nil {
					t.Fatalf("Close: %v", err)
				}
			} else {
				var qe *queue.Error
				if !errors.As(err, &qe) {
					t.Fatalf("Close: %v, want a *queue.Error", err)
				}
				if qe.ExitCode != tt.code || qe.Permanent != tt.perm || qe.Text != tt.text {
					t.Errorf("Close: %+v, want code %d permanent %v %q", qe, tt.code, tt.perm, tt.text)
				}
			}
			gotMsg, err := os.ReadFile(filepath.Join(out, "message"))
			if err != nil || string(gotMsg) != msg {
				t.Errorf("fd 0 carried %q (%v), want %q", gotMsg, err, msg)
			}
			gotEnv, err := os.ReadFile(filepath.Join(out, "envelope"))
			if want := "Fs@x\x00Ta@y\x00Tb@z\x00\x00"; err != nil || string(gotEnv) != want {
				t.Errorf("fd 1 carried %q (%v), want %q", gotEnv, err, want)
			}
		})
	}
}

// TestClientQueueDiesEarly: a queue program that exits before reading
// the message makes the caller's writes fail; its exit code is still
// what the caller reports, as in qmail.c.
func TestClientQueueDiesEarly(t *testing.T) {
	home := testenv.NewHome(t)
	if err := os.WriteFile(filepath.Join(home, "bin", "fake-queue"), []byte(fakeQueue), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("QMAILHOME", home)
	t.Setenv("QMAILQUEUE", filepath.Join(home, "bin", "fake-queue"))
	for _, tt := range []struct {
		early string
		code  int
		text  string
	}{
		{"53", 53, "qq write error or disk full (#4.3.0)"},
		{"0", 54, "qq read error (#4.3.0)"},
	} {
		t.Run(tt.early, func(t *testing.T) {
			t.Setenv("QQ_EARLY", tt.early)
			c, err := queue.Open(home)
			if err != nil {
				t.Fatal(err)
			}
			chunk := []byte(strings.Repeat("x", 64<<10))
			for i := 0; i < 64; i++ { // 4 MiB: far more than a pipe holds
				c.Write(chunk)
			}
			err = c.Close("s@x", []string{"r@y"})
			var qe *queue.Error
			if !errors.As(err, &qe) || qe.ExitCode != tt.code || qe.Text != tt.text {
				t.Errorf("Close: %v, want %q", err, tt.text)
			}
		})
	}
}

func TestClientCannotExec(t *testing.T) {
	home := testenv.NewHome(t)
	t.Setenv("QMAILHOME", home)
	t.Setenv("QMAILQUEUE", "bin/no-such-queue")
	_, err := queue.Open(home)
	var qe *queue.Error
	if !errors.As(err, &qe) || qe.ExitCode != 120 || qe.Text != "unable to exec qq (#4.3.0)" {
		t.Errorf("Open: %v, want unable to exec qq", err)
	}
}
