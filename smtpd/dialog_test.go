package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/queue"
)

// Dialog scripts live in testdata/*.dialog, one scenario per file:
//
//	# comment
//	control NAME CONTENT      control file (Go escapes in CONTENT)
//	env NAME=VALUE            connection variable
//	checkpassword PROG ARGS   checkpassword chain (paths relative to testdata)
//	queue exit N              the fake qmail-queue exits N
//	queue openfail            qmail-queue cannot be started
//	queue none                no message may be queued
//	authpipe openfail         the checkpassword pipe cannot be made
//	authpipe writefail        writing the credentials to it fails
//	C: LINE                   client sends LINE CRLF
//	R: BYTES                  client sends BYTES (Go escapes, no CRLF added)
//	S: LINE                   server answers LINE CRLF (quote it for trailing spaces)
//	M: LINE                   the queued message has this line (LF added)
//	F: ADDR / T: ADDR         the queued envelope sender / recipient
//	exit N                    the session ends with exit code N
//
// The client's bytes are all sent at once (the server must cope with any
// amount of pipelining); the replies are compared as one byte string.
// The clock stands at dialogNow and the queue's pid is dialogQP.

var dialogNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const dialogQP = 4242

type dialog struct {
	controls     map[string]string
	env          map[string]string
	checkpw      []string
	queueExit    int
	queueOpenErr bool
	authPipe     string
	input        bytes.Buffer
	want         bytes.Buffer
	wantMsg      *bytes.Buffer
	wantFrom     *string
	wantTo       []string
	wantExit     int
	wantNone     bool
}

func unescape(t *testing.T, s string) string {
	t.Helper()
	u, err := strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`)
	if err != nil {
		t.Fatalf("bad escape in %q: %v", s, err)
	}
	return u
}

func parseDialog(t *testing.T, text string) *dialog {
	d := &dialog{controls: map[string]string{}, env: map[string]string{}, wantExit: 1}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "control":
			name, content, _ := strings.Cut(rest, " ")
			d.controls[name] = unescape(t, content)
		case "env":
			k, v, _ := strings.Cut(rest, "=")
			d.env[k] = v
		case "checkpassword":
			d.checkpw = strings.Fields(rest)
		case "queue":
			if rest == "none" {
				d.wantNone = true
			} else if rest == "openfail" {
				d.queueOpenErr = true
			} else {
				d.queueExit, _ = strconv.Atoi(strings.TrimPrefix(rest, "exit "))
			}
		case "authpipe":
			d.authPipe = rest
		case "exit":
			d.wantExit, _ = strconv.Atoi(rest)
		case "C:":
			d.input.WriteString(rest + "\r\n")
		case "R:":
			d.input.WriteString(unescape(t, rest))
		case "S:":
			if strings.HasPrefix(rest, `"`) {
				u, err := strconv.Unquote(rest)
				if err != nil {
					t.Fatalf("bad S: line %q", line)
				}
				rest = u
			}
			d.want.WriteString(rest + "\r\n")
		case "M:":
			if d.wantMsg == nil {
				d.wantMsg = &bytes.Buffer{}
			}
			d.wantMsg.WriteString(unescape(t, rest) + "\n")
		case "F:":
			d.wantFrom = &rest
		case "T:":
			d.wantTo = append(d.wantTo, rest)
		default:
			t.Fatalf("unknown dialog line %q", line)
		}
	}
	return d
}

// fakeQueue records what would go to qmail-queue.
type fakeQueue struct {
	msg    bytes.Buffer
	failed error
	exit   int
	closed bool
	from   string
	to     []string
}

func (q *fakeQueue) Write(p []byte) (int, error) { return q.msg.Write(p) }
func (q *fakeQueue) Pid() int                    { return dialogQP }
func (q *fakeQueue) Fail(err error) {
	if q.failed == nil {
		q.failed = err
	}
}
func (q *fakeQueue) Close(from string, to []string) error {
	q.closed, q.from, q.to = true, from, to
	if q.failed != nil {
		return queue.ExitError(54)
	}
	if e := queue.ExitError(q.exit); e != nil {
		return e
	}
	return nil
}

// scriptConn feeds the client's bytes and collects the replies.
type scriptConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }

func runDialog(t *testing.T, d *dialog) (out string, queued []*fakeQueue, log string, code int) {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "control"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.controls["me"]; !ok {
		d.controls["me"] = "testhost.example"
	}
	for name, content := range d.controls {
		if err := os.WriteFile(filepath.Join(home, "control", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(k string) (string, bool) { v, ok := d.env[k]; return v, ok }
	cfg, err := LoadConfig(home, lookup)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	cfg.IsLocalIP = func(ip netip.Addr) bool { return ip == netip.MustParseAddr("192.0.2.1") }
	wd, _ := os.Getwd()
	for i, a := range d.checkpw {
		if !filepath.IsAbs(a) && (i == 0 || strings.HasPrefix(a, "./")) {
			d.checkpw[i] = filepath.Join(wd, "testdata", a)
		}
	}
	cfg.CheckPassword = d.checkpw
	conn := &scriptConn{in: bytes.NewReader(d.input.Bytes())}
	var logbuf bytes.Buffer
	s := NewSession(cfg, conn, &logbuf)
	s.Now = func() time.Time { return dialogNow }
	s.Pid = 999
	s.AuthFailDelay = 0
	s.OpenQueue = func() (Queue, error) {
		if d.queueOpenErr {
			return nil, errors.New("pipe failed")
		}
		q := &fakeQueue{exit: d.queueExit}
		queued = append(queued, q)
		return q, nil
	}
	switch d.authPipe {
	case "":
	case "openfail":
		s.authPipe = func() (*os.File, *os.File, error) { return nil, nil, errors.New("too many open files") }
	case "writefail":
		s.authPipe = func() (*os.File, *os.File, error) { return brokenPipe(t) }
	default:
		t.Fatalf("unknown authpipe %q", d.authPipe)
	}
	code = s.Run()
	return conn.out.String(), queued, logbuf.String(), code
}

// brokenPipe gives checkpassword a read end at EOF and the session a
// "write end" that is really the read end of another pipe, so the write
// of the credentials fails with EBADF whatever the child does.
func brokenPipe(t *testing.T) (r, w *os.File, err error) {
	r, rw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	rw.Close()
	wr, ww, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ww.Close()
	return r, wr, nil
}

func TestDialogs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.dialog")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dialogs: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".dialog"), func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d := parseDialog(t, string(text))
			out, queued, log, code := runDialog(t, d)
			if out != d.want.String() {
				t.Errorf("replies differ\n got: %q\nwant: %q\nlog:\n%s", out, d.want.String(), log)
			}
			if code != d.wantExit {
				t.Errorf("exit code %d, want %d", code, d.wantExit)
			}
			var last *fakeQueue
			if len(queued) > 0 {
				last = queued[len(queued)-1]
			}
			if d.wantMsg != nil {
				if last == nil {
					t.Fatalf("nothing queued")
				}
				if got := last.msg.String(); got != d.wantMsg.String() {
					t.Errorf("queued message\n got: %q\nwant: %q", got, d.wantMsg.String())
				}
			}
			if d.wantNone {
				for _, q := range queued {
					if q.closed && q.failed == nil && q.exit == 0 && q.to != nil {
						t.Errorf("a message was queued: %q", q.msg.String())
					}
				}
			}
			if d.wantFrom != nil {
				if last == nil || !last.closed || last.from != *d.wantFrom || strings.Join(last.to, ",") != strings.Join(d.wantTo, ",") {
					t.Errorf("envelope: got %+v, want from %q to %q", last, *d.wantFrom, d.wantTo)
				}
			}
		})
	}
}

func TestLogLines(t *testing.T) {
	d := parseDialog(t, "env TCPREMOTEIP=192.0.2.9\nC: HELO a\x01b\nC: MAIL FROM:<x:y@z>\nC: RCPT TO:<u@elsewhere.example>\nC: QUIT\n")
	_, _, log, _ := runDialog(t, d)
	want := "qmail-smtpd: pid 999 from 192.0.2.9: New session\n" +
		"qmail-smtpd: pid 999 from 192.0.2.9: Received HELO a_b\n" +
		"qmail-smtpd: pid 999 from 192.0.2.9: Sender <x_y@z>\n" +
		"qmail-smtpd: pid 999 from 192.0.2.9: Recipient <u@elsewhere.example>\n" +
		"qmail-smtpd: pid 999 from 192.0.2.9: Remote end QUIT: quitting\n"
	if log != want {
		t.Errorf("log\n got: %q\nwant: %q", log, want)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, "control"), 0o755)
	none := func(string) (string, bool) { return "", false }
	if _, err := LoadConfig(home, none); !errors.Is(err, ErrNoGreeting) {
		t.Fatalf("without me and smtpgreeting: %v, want ErrNoGreeting", err)
	}
	os.WriteFile(filepath.Join(home, "control", "me"), []byte("me.example\n"), 0o644)
	os.WriteFile(filepath.Join(home, "control", "timeoutsmtpd"), []byte("0\n"), 0o644)
	os.WriteFile(filepath.Join(home, "control", "databytes"), []byte("1000\n"), 0o644)
	cfg, err := LoadConfig(home, func(k string) (string, bool) {
		if k == "DATABYTES" {
			return "77x", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Greeting != "me.example" || cfg.LocalIPHost != "me.example" || cfg.Timeout != time.Second ||
		cfg.DataBytes != 77 || cfg.RcptHosts != nil || cfg.Env.RemoteIP != "unknown" ||
		cfg.Env.Local != "unknown" || cfg.Env.RemoteHost != "unknown" || cfg.Env.IsRelayClient {
		t.Errorf("defaults: %+v", cfg)
	}
}

// TestQueueExitReplies: each qmail-queue exit code gives, after the
// data, qmail's D text with 554 or its Z text with 451 (§2, §7.3).
func TestQueueExitReplies(t *testing.T) {
	tests := []struct {
		exit int
		want string
	}{
		{0, "250 ok 1767323045 qp 4242"},
		{11, "554 envelope address too long for qq (#5.1.3)"},
		{31, "554 mail server permanently rejected message (#5.3.0)"},
		{12, "554 qq permanent problem (#5.3.0)"},
		{51, "451 qq out of memory (#4.3.0)"},
		{52, "451 qq timeout (#4.3.0)"},
		{53, "451 qq write error or disk full (#4.3.0)"},
		{54, "451 qq read error (#4.3.0)"},
		{55, "451 qq unable to read configuration (#4.3.0)"},
		{56, "451 qq trouble making network connection (#4.3.0)"},
		{61, "451 qq trouble in home directory (#4.3.0)"},
		{63, "451 qq trouble creating files in queue (#4.3.0)"},
		{71, "451 mail server temporarily rejected message (#4.3.0)"},
		{72, "451 connection to mail server timed out (#4.4.1)"},
		{73, "451 connection to mail server rejected (#4.4.1)"},
		{74, "451 communication with mail server failed (#4.4.2)"},
		{81, "451 qq internal bug (#4.3.0)"},
		{91, "451 qq internal bug (#4.3.0)"},
		{120, "451 unable to exec qq (#4.3.0)"},
		{99, "451 qq temporary problem (#4.3.0)"},
	}
	for _, tt := range tests {
		d := parseDialog(t, "queue exit "+strconv.Itoa(tt.exit)+"\nC: MAIL FROM:<s@x.example>\nC: RCPT TO:<u@testhost.example>\nC: DATA\nC: hi\nC: .\nC: QUIT\n")
		out, _, _, code := runDialog(t, d)
		want := "220 testhost.example ESMTP\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n" + tt.want + "\r\n221 testhost.example\r\n"
		if out != want || code != 0 {
			t.Errorf("queue exit %d: replies %q, exit %d; want %q", tt.exit, out, code, want)
		}
	}
}
