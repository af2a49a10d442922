package pop3

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// fixture is a maildir message: its place, contents and age.
type fixture struct {
	name string // "new/X" or "cur/X:2,S"
	body string
	age  time.Duration
}

// makeMaildir writes a maildir in a temporary directory.
func makeMaildir(t testing.TB, files []fixture) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
		when := now.Add(-f.age)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// listMaildir lists the files of new/, cur/ and tmp/.
func listMaildir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, sub := range []string{"tmp", "new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			names = append(names, sub+"/"+e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// pipeConn is a connection with scripted input and recorded output.
type pipeConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// dialog is a POP3 exchange: "C: " lines are sent, "S: " lines are the
// expected replies, in order.
func runDialog(t *testing.T, script string, serve func(io.ReadWriter)) {
	t.Helper()
	var in, want strings.Builder
	for _, l := range strings.Split(script, "\n") {
		l = strings.TrimLeft(l, "\t")
		switch {
		case strings.TrimSpace(l) == "":
		case strings.HasPrefix(l, "C: "):
			in.WriteString(l[3:] + "\r\n")
		case strings.HasPrefix(l, "S: "):
			want.WriteString(l[3:] + "\r\n")
		case l == "S:":
			want.WriteString("\r\n")
		default:
			t.Fatalf("bad script line %q", l)
		}
	}
	c := &pipeConn{in: strings.NewReader(in.String())}
	serve(c)
	if got := c.out.String(); got != want.String() {
		t.Errorf("dialog mismatch\n got:\n%s\nwant:\n%s", got, want.String())
	}
}

var testMessages = []fixture{
	{"cur/1000.a.host:2,S", "Subject: one\n\nfirst\n", 3 * time.Hour},
	{"new/2000.b.host", "Subject: two\n\n.dotted\nline\n", 2 * time.Hour},
	{"new/3000.c.host", "Subject: three\nX: y\n\nl1\nl2\nl3\n", time.Hour},
	{"new/.hidden", "skipped\n", time.Hour},
	{"new/4000.future.host", "modified in the future\n", -time.Hour},
}

func TestPop3dDialogs(t *testing.T) {
	tests := []struct {
		name   string
		script string
		after  []string // maildir listing after the session
	}{
		{"stat list uidl", `
			S: +OK 
			C: STAT
			S: +OK 3 77
			C: list
			S: +OK 
			S: 1 20
			S: 2 27
			S: 3 30
			S: .
			C: LIST 2
			S: +OK 2 27
			C: UIDL
			S: +OK 
			S: 1 1000.a.host
			S: 2 2000.b.host
			S: 3 3000.c.host
			S: .
			C: uidl 1
			S: +OK 1 1000.a.host
			C: NOOP
			S: +OK 
			C: QUIT
			S: +OK 
		`, []string{"cur/1000.a.host:2,S", "cur/2000.b.host:2,", "cur/3000.c.host:2,", "new/.hidden", "new/4000.future.host"}},
		{"retr and top", `
			S: +OK 
			C: RETR 2
			S: +OK 
			S: Subject: two
			S:
			S: ..dotted
			S: line
			S:
			S: .
			C: TOP 3 1
			S: +OK 
			S: Subject: three
			S: X: y
			S:
			S: l1
			S:
			S: .
			C: TOP 3 0
			S: +OK 
			S: Subject: three
			S: X: y
			S:
			S:
			S: .
			C: top 3
			S: +OK 
			S: Subject: three
			S: X: y
			S:
			S: l1
			S: l2
			S: l3
			S:
			S: .
		`, []string{"cur/1000.a.host:2,S", "new/.hidden", "new/2000.b.host", "new/3000.c.host", "new/4000.future.host"}},
		{"dele, the stat quirk, last, rset", `
			S: +OK 
			C: DELE 2
			S: +OK 
			C: STAT
			S: +OK 3 50
			C: LIST
			S: +OK 
			S: 1 20
			S: 3 30
			S: .
			C: LAST
			S: +OK 2
			C: DELE 2
			S: -ERR already deleted
			C: RETR 2
			S: -ERR already deleted
			C: RSET
			S: +OK 
			C: LAST
			S: +OK 0
			C: STAT
			S: +OK 3 77
			C: DELE 1
			S: +OK 
			C: DELE 3
			S: +OK 
			C: QUIT
			S: +OK 
		`, []string{"cur/2000.b.host:2,", "new/.hidden", "new/4000.future.host"}},
		{"message number errors", `
			S: +OK 
			C: RETR
			S: -ERR syntax error
			C: DELE x
			S: -ERR syntax error
			C: LIST 0
			S: -ERR messages are counted from 1
			C: UIDL 4
			S: -ERR not that many messages
			C: DELE 99999999999999999999999
			S: -ERR not that many messages
			C: TOP 1junk 0
			S: +OK 
			S: Subject: one
			S:
			S: first
			S:
			S: .
		`, nil},
		{"unknown and other commands", `
			S: +OK 
			C: USER bob
			S: -ERR unimplemented
			C: CAPA
			S: -ERR unimplemented
			C: 
			S: -ERR unimplemented
			C: noop extra args
			S: +OK 
			C: quit
			S: +OK 
		`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeMaildir(t, testMessages)
			m, err := OpenMaildir(dir, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			runDialog(t, tt.script, func(c io.ReadWriter) { (&Pop3d{Maildir: m}).Serve(c) })
			if tt.after != nil {
				if got := listMaildir(t, dir); strings.Join(got, " ") != strings.Join(tt.after, " ") {
					t.Errorf("maildir after the session: %q, want %q", got, tt.after)
				}
			}
		})
	}
}

func TestOpenMaildirErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing")
	c := &pipeConn{in: strings.NewReader("")}
	ServeMaildir(c, missing, 0)
	if c.out.String() != "-ERR this user has no $HOME/Maildir\r\n" {
		t.Errorf("missing maildir: %q", c.out.String())
	}
	noCur := makeMaildir(t, nil)
	os.Remove(filepath.Join(noCur, "cur"))
	c = &pipeConn{in: strings.NewReader("")}
	ServeMaildir(c, noCur, 0)
	if c.out.String() != "-ERR unable to scan $HOME/Maildir\r\n" {
		t.Errorf("maildir without cur: %q", c.out.String())
	}
}

func TestOpenMaildirCleansTmp(t *testing.T) {
	dir := makeMaildir(t, []fixture{
		{"tmp/old", "x", 37 * time.Hour},
		{"tmp/recent", "x", 35 * time.Hour},
		{"tmp/.dot", "x", 100 * time.Hour},
	})
	if _, err := OpenMaildir(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := listMaildir(t, dir); strings.Join(got, " ") != "tmp/.dot tmp/recent" {
		t.Errorf("tmp after cleaning: %q", got)
	}
}

func TestQuitUnlinkFailure(t *testing.T) {
	dir := makeMaildir(t, testMessages[:2])
	m, err := OpenMaildir(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "cur/1000.a.host:2,S")) // gone behind our back
	runDialog(t, `
		S: +OK 
		C: DELE 1
		S: +OK 
		C: QUIT
		S: -ERR unable to unlink all deleted messages
		S: +OK 
	`, func(c io.ReadWriter) { (&Pop3d{Maildir: m}).Serve(c) })
}

func TestBlastLongLinesAndNoFinalNewline(t *testing.T) {
	long := strings.Repeat("x", 10000)
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := Blast(w, bufio.NewReaderSize(strings.NewReader("H: v\n\n."+long+"\nlast"), 16), 0); err != nil {
		t.Fatal(err)
	}
	want := "H: v\r\n\r\n.." + long + "\r\nlast\r\n\r\n.\r\n"
	if out.String() != want {
		t.Errorf("Blast = %q", out.String())
	}
}

// FuzzBlast checks that a client undoing the POP3 transfer encoding gets
// the message back: dots unstuffed, CRLF turned to LF.
func FuzzBlast(f *testing.F) {
	for _, s := range []string{"", "a\n", "H: v\n\nbody\n", ".\n..\n", "no newline", "\r\n\n.x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := Blast(w, bufio.NewReaderSize(bytes.NewReader(msg), 16), 0); err != nil {
			t.Fatal(err)
		}
		got, ok := strings.CutSuffix(out.String(), "\r\n.\r\n")
		if !ok {
			t.Fatalf("no terminator: %q", out.String())
		}
		// Every line ends in CRLF; the terminator's leading CRLF is
		// qmail's extra empty line.
		var decoded strings.Builder
		var lines []string
		if got != "" {
			body, ok := strings.CutSuffix(got, "\r\n")
			if !ok {
				t.Fatalf("last line without CRLF: %q", got)
			}
			lines = strings.Split(body, "\r\n")
		}
		for _, l := range lines {
			if l == "." {
				t.Fatalf("premature end of data in %q", got)
			}
			if strings.HasPrefix(l, ".") {
				l = l[1:]
			}
			decoded.WriteString(l + "\n")
		}
		want := string(msg)
		if want != "" && !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if decoded.String() != want && !strings.Contains(want, "\r\n") {
			t.Fatalf("decoded %q, want %q", decoded.String(), want)
		}
	})
}
