package qmtp

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseServers(t *testing.T) {
	got := ParseServers([]string{"127.0.0.1", "10.0.0.1:6280", "::1", "[2001:db8::1]", "[2001:db8::2]:6280",
		"mx.example.com", "1.2.3", "300.1.1.1", "127.0.0.1:0", "fe80::1%eth0", "[::1", ""})
	want := []string{"127.0.0.1:628", "10.0.0.1:6280", "[::1]:628", "[2001:db8::1]:628", "[2001:db8::2]:6280"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ParseServers = %q, want %q", got, want)
	}
}

func TestReadEnvelope(t *testing.T) {
	tests := []struct {
		in     string
		sender string
		rcpts  []string
		code   int // 0: success
	}{
		{in: "Fs@a\x00Tu@b\x00Tv@c\x00\x00", sender: "s@a", rcpts: []string{"u@b", "v@c"}},
		{in: "F\x00\x00", sender: ""},
		{in: "F\x00Tu\x00\x00trailing", sender: "", rcpts: []string{"u"}},
		{in: "", code: ExitBadEnvelope},
		{in: "\x00", code: ExitBadEnvelope},
		{in: "Ts\x00\x00", code: ExitBadEnvelope},
		{in: "Fs\x00Xu\x00\x00", code: ExitBadEnvelope},
		{in: "Fs\x00Tu\x00", code: ExitBadEnvelope},
		{in: "Fs", code: ExitBadEnvelope},
		{in: "F" + strings.Repeat("s", maxEnvelopeAddr+1) + "\x00\x00", code: ExitBadEnvelope},
	}
	for _, tt := range tests {
		sender, rcpts, err := ReadEnvelope(strings.NewReader(tt.in))
		if tt.code != 0 {
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != tt.code {
				t.Errorf("ReadEnvelope(%q) error %v, want exit %d", tt.in, err, tt.code)
			}
			continue
		}
		if err != nil || sender != tt.sender || strings.Join(rcpts, "|") != strings.Join(tt.rcpts, "|") {
			t.Errorf("ReadEnvelope(%q) = %q %q %v", tt.in, sender, rcpts, err)
		}
	}
}

// qmqpServer answers QMQP on a local port with ServeQMQP over a fake
// queue; it returns the address.
func qmqpServer(t *testing.T, q *queued) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg := testConfig(t, q, nil)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ServeQMQP(c, cfg)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// closedPort is an address nobody listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func spool(t *testing.T, body string) *Message {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.WriteString(body); w.Close() }()
	m, err := SpoolMessage(r, t.TempDir())
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClientSend(t *testing.T) {
	body := "Subject: hi\n\nline\n"
	tests := []struct {
		name     string
		servers  func(t *testing.T, q *queued) []string
		closeErr error
		code     int
		queued   bool
	}{
		{name: "first server", servers: func(t *testing.T, q *queued) []string { return []string{qmqpServer(t, q)} }, queued: true},
		{name: "refused then next", servers: func(t *testing.T, q *queued) []string { return []string{closedPort(t), qmqpServer(t, q)} }, queued: true},
		{name: "all refused", servers: func(t *testing.T, q *queued) []string { return []string{closedPort(t)} }, code: ExitConnRefused},
		{name: "no servers", servers: func(t *testing.T, q *queued) []string { return nil }, code: ExitNoServers},
		{name: "temporary", servers: func(t *testing.T, q *queued) []string { return []string{qmqpServer(t, q)} }, closeErr: errors.New("Zwhatever"), code: ExitTemporary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &queued{closeErr: tt.closeErr}
			c := &Client{Servers: tt.servers(t, q), ConnectTimeout: 10 * time.Second, IOTimeout: 60 * time.Second}
			code, err := c.Send(spool(t, body), "s@a.example", []string{"u@b.example", "v@c.example"})
			if code != tt.code {
				t.Fatalf("Send = %d (%v), want %d", code, err, tt.code)
			}
			got := q.delivered()
			if !tt.queued {
				if len(got) != 0 {
					t.Fatalf("queued %d", len(got))
				}
				return
			}
			if len(got) != 1 || !strings.HasSuffix(got[0].msg.String(), "\n"+body) || got[0].sender != "s@a.example" ||
				strings.Join(got[0].recipients, " ") != "u@b.example v@c.example" {
				t.Fatalf("queued %+v", got)
			}
		})
	}
}

func TestClientSendBadReply(t *testing.T) {
	for _, reply := range []string{"", "5:hello,", "3:Kok", "x"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			c.Read(buf)
			c.Write([]byte(reply))
			c.Close()
		}()
		c := &Client{Servers: []string{ln.Addr().String()}, ConnectTimeout: 10 * time.Second, IOTimeout: 60 * time.Second}
		code, _ := c.Send(spool(t, "x\n"), "", []string{"u"})
		ln.Close()
		if code != ExitConnFailed {
			t.Errorf("reply %q: exit %d, want %d", reply, code, ExitConnFailed)
		}
	}
}

func TestSpoolRegularFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "msg")
	os.WriteFile(p, []byte("hello\n"), 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	f.Seek(3, 0)
	m, err := SpoolMessage(f, "")
	if err != nil || m.File != f || m.Offset != 3 || m.Size != 3 {
		t.Fatalf("SpoolMessage = %+v, %v", m, err)
	}
	var b bytes.Buffer
	b.ReadFrom(m.File)
	if b.String() != "lo\n" {
		t.Fatalf("read %q", b.String())
	}
}

// TestClientSendIPv6 sends to a server listed the way qmqpservers lists
// an IPv6 server with a port.
func TestClientSendIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	q := &queued{}
	cfg := testConfig(t, q, nil)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		ServeQMQP(c, cfg)
		c.Close()
	}()
	defer ln.Close()
	servers := ParseServers([]string{"[::1]:" + strings.TrimPrefix(ln.Addr().String(), "[::1]:")})
	c := &Client{Servers: servers, ConnectTimeout: 10 * time.Second, IOTimeout: 60 * time.Second}
	if code, err := c.Send(spool(t, "x\n"), "s", []string{"u"}); code != ExitQueued {
		t.Fatalf("Send to %q = %d, %v", servers, code, err)
	}
	if got := q.delivered(); len(got) != 1 || got[0].recipients[0] != "u" {
		t.Fatalf("queued %+v", got)
	}
}
