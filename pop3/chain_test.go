package pop3_test

import (
	"bufio"
	"github.com/goqmail/goqmail/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chainDialog runs qmail-popup + testdata/checkpassword.py + qmail-pop3d
// over pipes and plays a script in lock step: "C: " lines are sent, each
// "S: " line must be the next line received.
func chainDialog(t *testing.T, script string) string {
	t.Helper()
	testenv.Tool(t, "python3", "python3")
	w := newWorld(t)
	home := filepath.Join(w.dir, "home")
	md := maildir(t, home, nobody, nobody, twoMessages)
	checkpassword, err := filepath.Abs(filepath.Join("testdata", "checkpassword.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(w.popup, "pop.example", checkpassword, w.pop3d, "Maildir")
	cmd.Env = append(os.Environ(), "FAKE_USER=bob", "FAKE_PASS=s3cret", "FAKE_HOME="+home, "QMAILHOME="+w.dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	in := bufio.NewReader(stdout)
	for _, l := range strings.Split(script, "\n") {
		l = strings.TrimLeft(l, "\t")
		switch {
		case strings.TrimSpace(l) == "":
		case strings.HasPrefix(l, "C: "):
			if _, err := stdin.Write([]byte(l[3:] + "\r\n")); err != nil {
				t.Fatalf("sending %q: %v", l, err)
			}
		case strings.HasPrefix(l, "S:"):
			want := strings.TrimPrefix(strings.TrimPrefix(l, "S:"), " ")
			got, err := in.ReadString('\n')
			if err != nil {
				t.Fatalf("expecting %q: %v", want, err)
			}
			if !strings.HasSuffix(got, "\r\n") {
				t.Fatalf("reply %q without CRLF", got)
			}
			got = strings.TrimSuffix(got, "\r\n")
			if want == "+OK <*>" {
				if !strings.HasPrefix(got, "+OK <") || !strings.HasSuffix(got, "@pop.example>") {
					t.Fatalf("greeting %q", got)
				}
				continue
			}
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case l == "EOF":
			if rest, err := in.ReadString('\n'); err == nil || rest != "" {
				t.Fatalf("more output: %q", rest)
			}
		default:
			t.Fatalf("bad script line %q", l)
		}
	}
	return md
}

func TestChainDialogs(t *testing.T) {
	t.Parallel()
	t.Run("session", func(t *testing.T) {
		t.Parallel()
		md := chainDialog(t, `
			S: +OK <*>
			C: STAT
			S: -ERR authorization first
			C: PASS s3cret
			S: -ERR USER first
			C: USER bob
			S: +OK 
			C: PASS s3cret
			S: +OK 
			C: STAT
			S: +OK 2 57
			C: LIST
			S: +OK 
			S: 1 35
			S: 2 22
			S: .
			C: UIDL 2
			S: +OK 2 2000.second.host
			C: TOP 1 0
			S: +OK 
			S: Subject: first
			S:
			S:
			S: .
			C: RETR 1
			S: +OK 
			S: Subject: first
			S:
			S: ..starts with a dot
			S:
			S: .
			C: DELE 2
			S: +OK 
			C: STAT
			S: +OK 2 35
			C: LAST
			S: +OK 2
			C: XTND
			S: -ERR unimplemented
			C: QUIT
			S: +OK 
			EOF
		`)
		if got := strings.Join(listFiles(t, md), " "); got != "cur/1000.first.host:2," {
			t.Errorf("maildir after the session: %s", got)
		}
	})
	t.Run("bad password", func(t *testing.T) {
		t.Parallel()
		chainDialog(t, `
			S: +OK <*>
			C: USER bob
			S: +OK 
			C: PASS nope
			S: -ERR authorization failed
			EOF
		`)
	})
	t.Run("quit before login", func(t *testing.T) {
		t.Parallel()
		chainDialog(t, `
			S: +OK <*>
			C: NOOP
			S: +OK 
			C: QUIT
			S: +OK 
			EOF
		`)
	})
}
