package smtpd

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/control/cdb"
)

func TestMoreRcptHosts(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "control")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "me"), []byte("me.example\n"), 0o644)
	err := cdb.WriteFile(filepath.Join(dir, "morercpthosts.cdb"), func(w *cdb.Writer) error {
		for _, k := range []string{"more.example", ".deep.example"} {
			if err := w.Add([]byte(k), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := control.Open(home)
	// Without rcpthosts, morercpthosts is not consulted: all allowed.
	rh, err := LoadRcptHosts(files)
	if err != nil || rh != nil {
		t.Fatalf("without rcpthosts: %v %v", rh, err)
	}
	os.WriteFile(filepath.Join(dir, "rcpthosts"), []byte("listed.example\n"), 0o644)
	rh, err = LoadRcptHosts(files)
	if err != nil {
		t.Fatal(err)
	}
	defer rh.Close()
	tests := []struct {
		addr string
		want bool
	}{
		{"a@listed.example", true}, {"a@MORE.example", true}, {"a@x.more.example", false},
		{"a@x.deep.example", true}, {"a@deep.example", false}, {"a@other.example", false}, {"a", true},
	}
	for _, tt := range tests {
		if got, err := rh.Allowed(tt.addr); got != tt.want || err != nil {
			t.Errorf("Allowed(%q) = %v, %v; want %v", tt.addr, got, err, tt.want)
		}
	}
}

// timeoutConn never delivers data: its reads fail like an expired deadline.
type timeoutConn struct{ out strings.Builder }

func (c *timeoutConn) Read(p []byte) (int, error)       { return 0, os.ErrDeadlineExceeded }
func (c *timeoutConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *timeoutConn) SetReadDeadline(time.Time) error  { return nil }
func (c *timeoutConn) SetWriteDeadline(time.Time) error { return nil }

func TestTimeout(t *testing.T) {
	cfg := &Config{Greeting: "g.example", Timeout: time.Second, Env: Environ{RemoteIP: "x", RemoteHost: "unknown", Local: "unknown"}}
	conn := &timeoutConn{}
	if code := NewSession(cfg, conn, nil).Run(); code != 1 {
		t.Errorf("exit code %d", code)
	}
	if got := conn.out.String(); got != "220 g.example ESMTP\r\n451 timeout (#4.4.2)\r\n" {
		t.Errorf("replies %q", got)
	}
}

// TestRealTimeout uses a real socket and the timeoutsmtpd deadline.
func TestRealTimeout(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	cfg := &Config{Greeting: "g.example", Timeout: 200 * time.Millisecond, Env: Environ{RemoteIP: "x", RemoteHost: "unknown", Local: "unknown"}}
	done := make(chan int)
	go func() { done <- NewSession(cfg, server, nil).Run() }()
	buf := make([]byte, 100)
	var got []byte
	for {
		n, err := client.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil || strings.Contains(string(got), "451") {
			break
		}
	}
	if code := <-done; code != 1 || string(got) != "220 g.example ESMTP\r\n451 timeout (#4.4.2)\r\n" {
		t.Errorf("exit %d, replies %q", code, got)
	}
}

// TestHugeMessageBoundedMemory streams 64 MiB of body, with long lines,
// through a session with databytes set: the session answers 552 and
// allocates far less than it read.
func TestHugeMessageBoundedMemory(t *testing.T) {
	const size = 64 << 20
	line := strings.Repeat("x", 100000) + "\r\n"
	body := io.LimitReader(&repeatString{s: line}, size)
	in := io.MultiReader(strings.NewReader("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"),
		body, strings.NewReader("\r\n.\r\nQUIT\r\n"))
	cfg := &Config{Greeting: "g", Timeout: time.Minute, DataBytes: 1000, Env: Environ{RemoteIP: "x", RemoteHost: "unknown", Local: "unknown"}}
	conn := &scriptConn{in: in}
	s := NewSession(cfg, conn, nil)
	q := &fakeQueue{}
	s.OpenQueue = func() (Queue, error) { return q, nil }
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code := s.Run()
	runtime.ReadMemStats(&after)
	if code != 0 || !strings.Contains(conn.out.String(), "\r\n552 sorry, that message size exceeds my databytes limit (#5.3.4)\r\n") {
		t.Fatalf("exit %d, replies %q", code, conn.out.String())
	}
	if q.msg.Len() > 2000 {
		t.Errorf("%d bytes reached the queue past databytes", q.msg.Len())
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d bytes for a %d-byte message", grew, size)
	}
}

type repeatString struct {
	s   string
	off int
}

func (r *repeatString) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

// TestEndlessCommandLine: a 32 MiB command line is consumed in bounded
// memory, refused once, and the session goes on.
func TestEndlessCommandLine(t *testing.T) {
	in := io.MultiReader(io.LimitReader(&repeatString{s: "a"}, 32<<20), strings.NewReader("\r\nNOOP\r\n"))
	cfg := &Config{Greeting: "g", Timeout: time.Minute, Env: Environ{RemoteIP: "x", RemoteHost: "unknown", Local: "unknown"}}
	conn := &scriptConn{in: in}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	NewSession(cfg, conn, nil).Run()
	runtime.ReadMemStats(&after)
	if got := conn.out.String(); got != "220 g ESMTP\r\n"+ReplyLineTooLong+"\r\n250 ok\r\n" {
		t.Errorf("replies %q", got)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("allocated %d bytes", grew)
	}
}
