package qmtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/queue"
)

// fakeQueue records one submission, as qmail-queue would receive it.
type fakeQueue struct {
	msg        bytes.Buffer
	failed     error
	closed     bool
	sender     string
	recipients []string
	closeErr   error
}

func (q *fakeQueue) Write(p []byte) (int, error) {
	if q.failed == nil {
		q.msg.Write(p)
	}
	return len(p), nil
}
func (q *fakeQueue) Pid() int { return 4242 }
func (q *fakeQueue) Fail(err error) {
	if q.failed == nil {
		q.failed = err
	}
}
func (q *fakeQueue) Close(sender string, recipients []string) error {
	q.closed, q.sender, q.recipients = true, sender, recipients
	if q.failed != nil {
		return &queue.Error{ExitCode: 54, Text: "qq read error (#4.3.0)"}
	}
	return q.closeErr
}

// queued is what a test's queue received: only submissions that were
// closed without failure count as queued.
type queued struct {
	qs       []*fakeQueue
	closeErr error
	openErr  error
}

func (q *queued) open() (Queue, error) {
	if q.openErr != nil {
		return nil, q.openErr
	}
	fq := &fakeQueue{closeErr: q.closeErr}
	q.qs = append(q.qs, fq)
	return fq, nil
}

func (q *queued) delivered() []*fakeQueue {
	var out []*fakeQueue
	for _, fq := range q.qs {
		if fq.closed && fq.failed == nil && fq.closeErr == nil {
			out = append(out, fq)
		}
	}
	return out
}

var testTime = time.Unix(1700000000, 0)

const testReceivedQMTP = "Received: from client.example (1.2.3.4)\n  by server.example with QMTP; 14 Nov 2023 22:13:20 -0000\n"

// testConfig is a QMTP configuration with rcpthosts = example.com and
// .example.net, and the given environment.
func testConfig(t testing.TB, q *queued, env map[string]string) *Config {
	t.Helper()
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, "control"), 0o755)
	os.WriteFile(filepath.Join(home, "control", "rcpthosts"), []byte("example.com\n.example.net\n"), 0o644)
	base := map[string]string{"TCPREMOTEIP": "1.2.3.4", "TCPREMOTEHOST": "client.example", "TCPLOCALHOST": "server.example"}
	for k, v := range env {
		base[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := base[k]; return v, ok }
	cfg, err := LoadConfig(home, lookup)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = func() time.Time { return testTime }
	if q != nil {
		cfg.OpenQueue = q.open
	}
	return cfg
}

// conn is a connection whose input is fixed and whose output is kept.
type conn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *conn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *conn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *conn) String() string              { return c.out.String() }

func ns(s string) string { return string(AppendNetstring(nil, s)) }

// qmtpMsg encodes one QMTP message: body with its flag byte, sender,
// recipients.
func qmtpMsg(body, sender string, rcpts ...string) string {
	list := ""
	for _, r := range rcpts {
		list += ns(r)
	}
	return ns(body) + ns(sender) + ns(list)
}

const okReply = "22:Kok 1700000000 qp 4242,"

func TestServeQMTP(t *testing.T) {
	long := strings.Repeat("a", 995) + "@example.com"
	tests := []struct {
		name     string
		env      map[string]string
		in       string
		out      string
		code     int
		messages []string // bodies queued (after the Received line)
		envs     [][]string
	}{
		{
			name:     "LF body",
			in:       qmtpMsg("\nSubject: x\n\nbody\n", "s@a.example", "u@example.com"),
			out:      okReply,
			messages: []string{"Subject: x\n\nbody\n"},
			envs:     [][]string{{"s@a.example", "u@example.com"}},
		},
		{
			name:     "CRLF body converted, lone CR kept",
			in:       qmtpMsg("\rSubject: x\r\n\r\nbo\rdy\r\r\nend\r", "s@a.example", "u@example.com"),
			out:      okReply,
			messages: []string{"Subject: x\n\nbo\rdy\r\nend\r"},
			envs:     [][]string{{"s@a.example", "u@example.com"}},
		},
		{
			name: "many messages on one connection",
			in: qmtpMsg("\none\n", "a@a.example", "u@example.com", "v@x.example.net") +
				qmtpMsg("\rtwo\r\n", "", "w@example.com") +
				qmtpMsg("\nthree\n", "b@b.example", "x@example.com"),
			out:      okReply + okReply + okReply + okReply,
			messages: []string{"one\n", "two\n", "three\n"},
			envs:     [][]string{{"a@a.example", "u@example.com", "v@x.example.net"}, {"", "w@example.com"}, {"b@b.example", "x@example.com"}},
		},
		{
			name:     "rcpthosts refusal per recipient",
			in:       qmtpMsg("\nbody\n", "s@a.example", "u@example.com", "v@example.net", "w@elsewhere.example", "local"),
			out:      okReply + ns("Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)") + ns("Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)") + okReply,
			messages: []string{"body\n"},
			envs:     [][]string{{"s@a.example", "u@example.com", "local"}},
		},
		{
			name:     "RELAYCLIENT skips rcpthosts and is appended",
			env:      map[string]string{"RELAYCLIENT": "@relay"},
			in:       qmtpMsg("\nbody\n", "s@a.example", "w@elsewhere.example"),
			out:      okReply,
			messages: []string{"body\n"},
			envs:     [][]string{{"s@a.example", "w@elsewhere.example@relay"}},
		},
		{
			name: "recipient too long or with NUL",
			in:   qmtpMsg("\nbody\n", "s@a.example", long, "u@example.com", "n\x00l@example.com"),
			out: "46:Dsorry, I can't handle that recipient (#5.1.3)," + okReply +
				"46:Dsorry, I can't handle that recipient (#5.1.3),",
			messages: []string{"body\n"},
			envs:     [][]string{{"s@a.example", "u@example.com"}},
		},
		{
			name: "RELAYCLIENT makes a recipient too long",
			env:  map[string]string{"RELAYCLIENT": strings.Repeat("r", 990)},
			in:   qmtpMsg("\nbody\n", "s", "0123456789", "u"),
			out:  "46:Dsorry, I can't handle that recipient (#5.1.3)," + okReply,
			envs: [][]string{{"s", "u" + strings.Repeat("r", 990)}},
		},
		{
			name: "unacceptable sender",
			in:   qmtpMsg("\nbody\n", "s\x00@a.example", "u@example.com", "v@example.com") + qmtpMsg("\nbody\n", strings.Repeat("s", 1000), "u@example.com"),
			out:  strings.Repeat(ns("Dunacceptable sender (#5.1.7)"), 3),
		},
		{
			name: "databytes, LF body",
			env:  map[string]string{"DATABYTES": "5"},
			in:   qmtpMsg("\n12345", "s", "u@example.com") + qmtpMsg("\n123456", "s", "u@example.com"),
			out:  okReply + ns("Dsorry, that message size exceeds my databytes limit (#5.3.4)"),
			envs: [][]string{{"s", "u@example.com"}},
		},
		{
			name: "databytes, CRLF body counts stored bytes",
			env:  map[string]string{"DATABYTES": "6"},
			in:   qmtpMsg("\r12\r\n34\r\n", "s", "u@example.com") + qmtpMsg("\r12\r\n345\r\n", "s", "u@example.com"),
			out:  okReply + ns("Dsorry, that message size exceeds my databytes limit (#5.3.4)"),
			envs: [][]string{{"s", "u@example.com"}},
		},
		{
			name: "no recipients: no reply",
			in:   qmtpMsg("\nbody\n", "s") + qmtpMsg("\nbody\n", "s", "u@elsewhere.example"),
			out:  ns("Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"),
		},
		{name: "empty message netstring", in: "0:,", code: ExitProtocol},
		{name: "bad body flag", in: qmtpMsg("xbody", "s", "u@example.com"), code: ExitProtocol},
		{name: "non-digit length", in: "1x:", code: ExitProtocol},
		{name: "missing comma after body", in: "5:\nbody;", code: ExitProtocol},
		{name: "missing comma after list", in: "5:\nbody,1:s," + "3:0:,;", code: ExitProtocol},
		{name: "recipient past its list", in: "5:\nbody,1:s,4:5:abcde,", code: ExitProtocol},
		{name: "recipient length past its list", in: "5:\nbody,1:s,2:12", code: ExitProtocol},
		{name: "length of 10^18", in: "1000000000000000000:\nbody", code: ExitResources},
		{name: "recipient list too large", in: "5:\nbody,1:s,99999999:", code: ExitResources},
		{name: "connection ends mid-message", in: "100:\nbody", code: ExitOK},
		{name: "connection ends in recipients", in: "5:\nbody,1:s,20:5:ab", code: ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &queued{}
			cfg := testConfig(t, q, tt.env)
			c := &conn{in: strings.NewReader(tt.in)}
			code, err := ServeQMTP(c, cfg)
			if code != tt.code {
				t.Errorf("exit code %d (%v), want %d", code, err, tt.code)
			}
			if got := c.String(); got != tt.out {
				t.Errorf("replies\n got %q\nwant %q", got, tt.out)
			}
			got := q.delivered()
			if len(got) != len(tt.envs) {
				t.Fatalf("%d messages queued, want %d", len(got), len(tt.envs))
			}
			for i, fq := range got {
				msg := fq.msg.String()
				if !strings.HasPrefix(msg, testReceivedQMTP) {
					t.Errorf("message %d lacks the Received line: %q", i, msg)
				}
				if tt.messages != nil && strings.TrimPrefix(msg, testReceivedQMTP) != tt.messages[i] {
					t.Errorf("message %d = %q, want %q", i, strings.TrimPrefix(msg, testReceivedQMTP), tt.messages[i])
				}
				env := append([]string{fq.sender}, fq.recipients...)
				if strings.Join(env, "|") != strings.Join(tt.envs[i], "|") {
					t.Errorf("envelope %d = %q, want %q", i, env, tt.envs[i])
				}
			}
			// Every submission, queued or not, was closed (no child left).
			for i, fq := range q.qs {
				if !fq.closed {
					t.Errorf("submission %d never closed", i)
				}
			}
		})
	}
}

func TestServeQMTPQueueErrors(t *testing.T) {
	for _, tt := range []struct {
		name     string
		closeErr error
		openErr  error
		want     string
		code     int
	}{
		{name: "temporary", closeErr: queue.ExitError(53), want: ns("Zqq write error or disk full (#4.3.0)")},
		{name: "permanent", closeErr: queue.ExitError(31), want: ns("Dmail server permanently rejected message (#5.3.0)")},
		{name: "cannot exec", openErr: queue.ExitError(120), want: ns("Zunable to exec qq (#4.3.0)")},
		{name: "cannot start", openErr: errors.New("pipe: too many open files"), code: ExitResources},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := &queued{closeErr: tt.closeErr, openErr: tt.openErr}
			c := &conn{in: strings.NewReader(qmtpMsg("\nbody\n", "s", "u@example.com"))}
			code, _ := ServeQMTP(c, testConfig(t, q, nil))
			if code != tt.code || c.String() != tt.want {
				t.Errorf("got %d %q, want %d %q", code, c.String(), tt.code, tt.want)
			}
		})
	}
}

// qmqpReq encodes a QMQP request.
func qmqpReq(msg, sender string, rcpts ...string) string {
	inner := ns(msg) + ns(sender)
	for _, r := range rcpts {
		inner += ns(r)
	}
	return ns(inner)
}

const testReceivedQMQP = "Received: from client.example (1.2.3.4)\n  by server.example with QMQP; 14 Nov 2023 22:13:20 -0000\n"

func TestServeQMQP(t *testing.T) {
	badAddr := ns("Dsorry, I can't accept addresses like that (#5.1.3)")
	tests := []struct {
		name string
		in   string
		out  string
		code int
		env  []string // queued envelope, nil: nothing queued
	}{
		{name: "one message", in: qmqpReq("Subject: x\n\nbody\n", "s@a.example", "u@elsewhere.example", "v@example.com"), out: okReply,
			env: []string{"s@a.example", "u@elsewhere.example", "v@example.com"}},
		{name: "empty sender", in: qmqpReq("body\n", "", "u@example.com"), out: okReply, env: []string{"", "u@example.com"}},
		{name: "long recipient", in: qmqpReq("body\n", "s", strings.Repeat("u", 1000), "v"), out: badAddr},
		{name: "NUL in sender", in: qmqpReq("body\n", "s\x00", "v"), out: badAddr},
		{name: "long sender", in: qmqpReq("body\n", strings.Repeat("s", 1000), "v"), out: badAddr},
		{name: "missing outer comma", in: strings.TrimSuffix(qmqpReq("body\n", "s", "v"), ",") + ";", code: ExitProtocol},
		{name: "inner longer than outer", in: "10:" + ns("body\n") + ns("sender") + ",", code: ExitProtocol},
		{name: "non-digit length", in: "1a:", code: ExitProtocol},
		{name: "length without colon", in: strings.Repeat("0", 101), code: ExitProtocol},
		{name: "length of 10^18", in: "1000000000000000000:", code: ExitResources},
		{name: "connection ends mid-message", in: "100:50:body", code: ExitOK},
		{name: "no input", in: "", code: ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &queued{}
			c := &conn{in: strings.NewReader(tt.in)}
			code, err := ServeQMQP(c, testConfig(t, q, nil))
			if code != tt.code {
				t.Errorf("exit code %d (%v), want %d", code, err, tt.code)
			}
			if c.String() != tt.out {
				t.Errorf("reply %q, want %q", c.String(), tt.out)
			}
			got := q.delivered()
			if tt.env == nil {
				if len(got) != 0 {
					t.Fatalf("queued %d messages, want none", len(got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("queued %d messages, want 1", len(got))
			}
			if env := append([]string{got[0].sender}, got[0].recipients...); strings.Join(env, "|") != strings.Join(tt.env, "|") {
				t.Errorf("envelope %q, want %q", env, tt.env)
			}
			if !strings.HasPrefix(got[0].msg.String(), testReceivedQMQP) {
				t.Errorf("message lacks Received line: %q", got[0].msg.String())
			}
		})
	}
}

// FuzzServeQMTP runs the QMTP server on arbitrary input: it must end with
// one of qmail's exit codes, close every submission it opened, and write
// only well-formed netstring replies.
func FuzzServeQMTP(f *testing.F) {
	f.Add([]byte(qmtpMsg("\nbody\n", "s", "u@example.com")))
	f.Add([]byte(qmtpMsg("\rbo\r\ndy\r", "s", "u@x", "v@example.net") + "1x:"))
	f.Add([]byte("5:\nbody,1:s,4:5:abcde,"))
	cfg := testConfig(f, nil, map[string]string{"DATABYTES": "20"})
	f.Fuzz(func(t *testing.T, in []byte) {
		q := &queued{}
		cfg.OpenQueue = q.open
		c := &conn{in: bytes.NewReader(in)}
		code, _ := ServeQMTP(c, cfg)
		if code != ExitOK && code != ExitProtocol && code != ExitResources {
			t.Fatalf("exit code %d", code)
		}
		for _, fq := range q.qs {
			if !fq.closed {
				t.Fatal("submission left open")
			}
		}
		r := bufio.NewReader(&c.out)
		for {
			if _, err := ReadNetstring(r, 1000); err != nil {
				if err != io.EOF {
					t.Fatalf("bad reply stream %q: %v", c.String(), err)
				}
				break
			}
		}
	})
}

// FuzzServeQMQP runs the QMQP server on arbitrary input: one of qmail's
// exit codes, every submission closed, and at most one well-formed reply.
func FuzzServeQMQP(f *testing.F) {
	f.Add([]byte(qmqpReq("body\n", "s", "u@example.com")))
	f.Add([]byte(qmqpReq("body\n", "s\x00", strings.Repeat("u", 1000))))
	f.Add([]byte("10:" + ns("body\n") + ns("sender") + ","))
	cfg := testConfig(f, nil, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		q := &queued{}
		cfg.OpenQueue = q.open
		c := &conn{in: bytes.NewReader(in)}
		code, _ := ServeQMQP(c, cfg)
		if code != ExitOK && code != ExitProtocol && code != ExitResources {
			t.Fatalf("exit code %d", code)
		}
		for _, fq := range q.qs {
			if !fq.closed {
				t.Fatal("submission left open")
			}
		}
		if c.String() == "" {
			return
		}
		r := bufio.NewReader(&c.out)
		reply, err := ReadNetstring(r, 1000)
		if err != nil || r.Buffered() != 0 || len(reply) == 0 || strings.IndexByte("KZD", reply[0]) < 0 {
			t.Fatalf("reply stream %q: %v", c.String(), err)
		}
	})
}

// TestQMTPMoreRcptHosts checks that morercpthosts.cdb (made by
// qmail-newmrh) extends rcpthosts for QMTP, and that without rcpthosts
// every domain is accepted.
func TestQMTPMoreRcptHosts(t *testing.T) {
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, "control"), 0o755)
	os.WriteFile(filepath.Join(home, "control", "morercpthosts"), []byte("more.example\n"), 0o644)
	if err := control.NewMRH(home); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		q := &queued{}
		cfg, err := LoadConfig(home, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		defer cfg.Close()
		cfg.OpenQueue, cfg.Now = q.open, func() time.Time { return testTime }
		c := &conn{in: strings.NewReader(qmtpMsg("\nbody\n", "s", "a@more.example", "b@other.example"))}
		ServeQMTP(c, cfg)
		return c.String()
	}
	// Without rcpthosts, morercpthosts is not consulted: open relay.
	if got := run(); got != okReply+okReply {
		t.Errorf("no rcpthosts: %q", got)
	}
	os.WriteFile(filepath.Join(home, "control", "rcpthosts"), []byte("example.com\n"), 0o644)
	if got := run(); got != okReply+replyNotRcpthost {
		t.Errorf("rcpthosts + morercpthosts: %q", got)
	}
}
