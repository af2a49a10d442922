package remote

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsmtp"
)

// countingListener counts the connections a peer accepts and can hang
// them up from the peer's side.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *countingListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// hangUp closes every connection from the peer's side.
func (l *countingListener) hangUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

func listenCounting(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &countingListener{Listener: ln}
}

// countingPeer is a testsmtp peer behind a countingListener.
func countingPeer(t *testing.T, configure func(*testsmtp.Peer)) (*testsmtp.Peer, *countingListener) {
	t.Helper()
	ln := listenCounting(t)
	return testsmtp.Start(t, ln, configure), ln
}

// deliverKept runs one delivery in this process with conns, as a worker
// does, and returns its reports.
func deliverKept(t *testing.T, home string, conns *ConnCache, dial func(context.Context, string, string) (net.Conn, error), msg string, recips ...string) []string {
	t.Helper()
	d := &Delivery{
		Home: home, Host: "dest.example", Sender: "f@testhost.example", Recipients: recips,
		Message: strings.NewReader(msg), Size: int64(len(msg)), Conns: conns, Dial: dial,
	}
	var out strings.Builder
	if err := Run(d, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.HasSuffix(s, "\x00") {
		t.Fatalf("reports not NUL-terminated: %q", s)
	}
	return strings.Split(strings.TrimSuffix(s, "\x00"), "\x00")
}

const acceptedReport = "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n"

func TestConnReuse(t *testing.T) {
	t.Parallel()
	p, ln := countingPeer(t, nil)
	home := routedHome(t, literalRoute(p))
	conns := NewConnCache(time.Minute, 4)
	const n = 5
	for i := range n {
		reports := deliverKept(t, home, conns, nil, fmt.Sprintf("Subject: %d\n\nbody\n", i), "to@dest.example")
		wantReports(t, reports, "r", acceptedReport)
	}
	if got := ln.count(); got != 1 {
		t.Fatalf("%d deliveries used %d connections, want 1", n, got)
	}
	conns.Close()
	got := p.Received()
	if len(got) != n {
		t.Fatalf("peer got %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if want := fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i); m.Data != want {
			t.Errorf("message %d: %q, want %q", i, m.Data, want)
		}
	}
	wire := p.Wire()
	for word, want := range map[string]int{"EHLO ": 1, "MAIL FROM:": n, "RSET": 0, "QUIT\r\n": 1} {
		if c := strings.Count(wire, word); c != want {
			t.Errorf("%q sent %d times, want %d: %q", word, c, want, wire)
		}
	}
	if !strings.HasSuffix(wire, "\r\n.\r\nQUIT\r\n") {
		t.Errorf("the session does not end with the last message and QUIT: %q", wire)
	}
}

// TestConnReuseOnlyAfterSuccess: a delivery that did not end in an
// accepted message, whatever the reason, leaves no connection behind,
// and its reports are those of qmail-remote without reuse.
func TestConnReuseOnlyAfterSuccess(t *testing.T) {
	t.Parallel()
	p, ln := countingPeer(t, func(p *testsmtp.Peer) {
		p.RejectRcpt["hard@dest.example"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		p.DeferMessages = 1
	})
	home := routedHome(t, literalRoute(p))
	conns := NewConnCache(time.Minute, 4)
	defer conns.Close()
	steps := []struct {
		recip string
		want  []string
		conns int // connections the peer has seen afterwards
	}{
		{"hard@dest.example", []string{"h127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 no such user\n", "DGiving up on 127.0.0.1.\n"}, 1},
		{"t@dest.example", []string{"r", "Z127.0.0.1 failed after I sent the message.\nRemote host said: 451 4.3.0 not now, try again\n"}, 2},
		{"t@dest.example", []string{"r", acceptedReport}, 3},
		{"t@dest.example", []string{"r", acceptedReport}, 3},
		{"hard@dest.example", []string{"h127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 no such user\n", "DGiving up on 127.0.0.1.\n"}, 3},
		{"t@dest.example", []string{"r", acceptedReport}, 4},
	}
	for i, s := range steps {
		wantReports(t, deliverKept(t, home, conns, nil, "x\n", s.recip), s.want...)
		if got := ln.count(); got != s.conns {
			t.Fatalf("after delivery %d: %d connections, want %d", i, got, s.conns)
		}
	}
}

// TestConnReusePeerHangsUp: the peer closes the idle connection; the
// next delivery goes on a new one and reports nothing of the old.
func TestConnReusePeerHangsUp(t *testing.T) {
	t.Parallel()
	p, ln := countingPeer(t, nil)
	home := routedHome(t, literalRoute(p))
	conns := NewConnCache(time.Minute, 4)
	defer conns.Close()
	wantReports(t, deliverKept(t, home, conns, nil, "x\n", "t@dest.example"), "r", acceptedReport)
	ln.hangUp()
	wantReports(t, deliverKept(t, home, conns, nil, "x\n", "t@dest.example"), "r", acceptedReport)
	if got := ln.count(); got != 2 {
		t.Fatalf("%d connections, want 2", got)
	}
	if got := len(p.Received()); got != 2 {
		t.Fatalf("peer got %d messages, want 2", got)
	}
}

// opaqueConn hides the socket, so that a kept connection cannot be
// checked before use: a peer's hang-up is found at MAIL FROM.
type opaqueConn struct{ net.Conn }

func opaqueDial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return opaqueConn{c}, nil
}

func TestConnReuseDeadAtMail(t *testing.T) {
	t.Parallel()
	p, ln := countingPeer(t, nil)
	home := routedHome(t, literalRoute(p))
	conns := NewConnCache(time.Minute, 4)
	defer conns.Close()
	wantReports(t, deliverKept(t, home, conns, opaqueDial, "x\n", "t@dest.example"), "r", acceptedReport)
	ln.hangUp()
	wantReports(t, deliverKept(t, home, conns, opaqueDial, "x\n", "t@dest.example"), "r", acceptedReport)
	if got := ln.count(); got != 2 {
		t.Fatalf("%d connections, want 2", got)
	}
	if got := len(p.Received()); got != 2 {
		t.Fatalf("peer got %d messages, want 2", got)
	}
}

// closingBackend answers 421 to the second MAIL FROM of each connection
// (a server shutting down), and counts what it accepted.
type closingBackend struct {
	mu       sync.Mutex
	accepted int
}

func (b *closingBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &closingSession{b: b}, nil
}

type closingSession struct {
	b     *closingBackend
	mails int
}

func (s *closingSession) Mail(string, *smtp.MailOptions) error {
	s.mails++
	if s.mails > 1 {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "shutting down"}
	}
	return nil
}
func (s *closingSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *closingSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.b.mu.Lock()
	s.b.accepted++
	s.b.mu.Unlock()
	return nil
}
func (s *closingSession) Reset()        {}
func (s *closingSession) Logout() error { return nil }

// TestConnReuse421AtMail: a peer closing the kept connection answers
// MAIL FROM with 421 (RFC 5321 3.8); the message goes on a new
// connection, and the 421 is not reported.
func TestConnReuse421AtMail(t *testing.T) {
	t.Parallel()
	ln := listenCounting(t)
	b := &closingBackend{}
	srv := smtp.NewServer(b)
	srv.Domain = "closing.test.example"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	home := routedHome(t, fmt.Sprintf("[%s]:%d", addr.IP, addr.Port))
	conns := NewConnCache(time.Minute, 4)
	defer conns.Close()
	for i := range 3 {
		wantReports(t, deliverKept(t, home, conns, nil, "x\n", "t@dest.example"), "r", acceptedReport)
		if got := ln.count(); got != i+1 {
			t.Fatalf("after delivery %d: %d connections, want %d", i, got, i+1)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.accepted != 3 {
		t.Fatalf("peer accepted %d messages, want 3", b.accepted)
	}
}

// TestConnReuseIdleExpiry: an idle connection is ended with QUIT when
// its time is up, and the next delivery connects again.
func TestConnReuseIdleExpiry(t *testing.T) {
	t.Parallel()
	p, ln := countingPeer(t, nil)
	home := routedHome(t, literalRoute(p))
	conns := NewConnCache(time.Millisecond, 4)
	wantReports(t, deliverKept(t, home, conns, nil, "x\n", "t@dest.example"), "r", acceptedReport)
	waitFor(t, "the idle connection to expire", func() bool {
		conns.mu.Lock()
		defer conns.mu.Unlock()
		return len(conns.conns) == 0
	})
	wantReports(t, deliverKept(t, home, conns, nil, "x\n", "t@dest.example"), "r", acceptedReport)
	if got := ln.count(); got != 2 {
		t.Fatalf("%d connections, want 2", got)
	}
	waitFor(t, "the second connection to expire", func() bool {
		conns.mu.Lock()
		defer conns.mu.Unlock()
		return len(conns.conns) == 0
	})
	// Wire waits until both connections have ended, which only the
	// expiry does.
	wire := p.Wire()
	if strings.Count(wire, "EHLO ") != 2 || strings.Count(wire, "\r\n.\r\nQUIT\r\n") != 2 {
		t.Fatalf("the idle connections were not ended with QUIT: %q", wire)
	}
	conns.Close()
}

// TestConnReuseSameSetupOnly: a kept connection serves only deliveries
// set up the same way: a changed HELO name or AUTH login, or a full
// cache, means another connection.
func TestConnReuseSameSetupOnly(t *testing.T) {
	t.Parallel()
	p, ln := countingPeer(t, func(p *testsmtp.Peer) {
		p.Mechanisms = []string{"PLAIN"}
		p.Users["u1@x.example"] = "pw1"
		p.Users["u2@x.example"] = "pw2"
	})
	home := routedHome(t, literalRoute(p))
	conns := NewConnCache(time.Minute, 1)
	defer conns.Close()
	route := func(user string) {
		testenv.WriteControl(t, home, "smtproutes", "dest.example:"+literalRoute(p)+"|"+user+"\n")
	}
	steps := []struct {
		setup func()
		conns int
		auth  string
	}{
		{func() {}, 1, ""},
		{func() {}, 1, ""},
		{func() { testenv.WriteControl(t, home, "helohost", "other.example\n") }, 2, ""},
		{func() {}, 2, ""},
		{func() { route("u1@x.example|pw1") }, 3, "u1@x.example"},
		{func() {}, 3, "u1@x.example"},
		{func() { route("u2@x.example|pw2") }, 4, "u2@x.example"},
		{func() { route("u1@x.example|pw1") }, 5, "u1@x.example"}, // the cache holds one: u1's was ended
	}
	for i, s := range steps {
		s.setup()
		wantReports(t, deliverKept(t, home, conns, nil, "x\n", "t@dest.example"), "r", acceptedReport)
		if got := ln.count(); got != s.conns {
			t.Fatalf("after delivery %d: %d connections, want %d", i, got, s.conns)
		}
		got := p.Received()
		if m := got[len(got)-1]; m.Auth != s.auth {
			t.Fatalf("delivery %d logged in as %q, want %q", i, m.Auth, s.auth)
		}
	}
}

func TestConnCacheNil(t *testing.T) {
	t.Parallel()
	var c *ConnCache
	if c.take(connKey{}) != nil || c.has(connKey{}) {
		t.Fatal("a nil cache keeps connections")
	}
}

// TestConnReuseTLS: a kept STARTTLS session carries the next messages
// over TLS; a change of the tlshosts/ verdict for the exchanger means a
// new connection set up under it.
func TestConnReuseTLS(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	cert, _ := ca.issue(t, "mx.test.example", []string{"mx.test.example"}, false)
	p, ln := countingPeer(t, func(p *testsmtp.Peer) { p.TLSConfig = serverTLS(cert) })
	home := tlsSetup(t, p)
	if err := os.MkdirAll(filepath.Join(home, "control", "tlshosts"), 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.WriteControl(t, home, "tlshosts/mx.test.example.pem", string(ca.certPEM))
	conns := NewConnCache(time.Minute, 4)
	defer conns.Close()
	for i := range 3 {
		wantReports(t, deliverKept(t, home, conns, nil, "x\n", "t@dest.example"), "r", acceptedReport)
		if got := ln.count(); got != 1 {
			t.Fatalf("after delivery %d: %d connections, want 1", i, got)
		}
	}
	if err := os.Remove(filepath.Join(home, "control", "tlshosts", "mx.test.example.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "control", "notlshosts"), 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.WriteControl(t, home, "notlshosts/mx.test.example", "")
	wantReports(t, deliverKept(t, home, conns, nil, "x\n", "t@dest.example"), "r", acceptedReport)
	if got := ln.count(); got != 2 {
		t.Fatalf("after the verdict changed: %d connections, want 2", got)
	}
	got := p.Received()
	for i, m := range got {
		if m.TLS != (i < 3) {
			t.Errorf("message %d: TLS %v", i, m.TLS)
		}
	}
	if len(got) != 4 {
		t.Fatalf("peer got %d messages, want 4", len(got))
	}
}

// TestConnReuseSMTPSink: Postfix's smtp-sink, with ESMTP and PIPELINING
// and without (HELO, one command at a time), takes several messages on
// one connection.
func TestConnReuseSMTPSink(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"-e"}} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			t.Parallel()
			port, dir := startSink(t, args...)
			home := routedHome(t, fmt.Sprintf("[127.0.0.1]:%d", port))
			var mu sync.Mutex
			dials := 0
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				mu.Lock()
				dials++
				mu.Unlock()
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}
			conns := NewConnCache(time.Minute, 4)
			const n = 3
			for i := range n {
				reports := deliverKept(t, home, conns, dial, fmt.Sprintf("Subject: %d\n\nbody\n", i), "t@dest.example")
				wantReports(t, reports, "r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 Ok\n")
			}
			conns.Close()
			mu.Lock()
			defer mu.Unlock()
			if dials != 1 {
				t.Fatalf("%d deliveries made %d connections, want 1", n, dials)
			}
			if dumps := sinkDumps(t, dir, n); len(dumps) != n {
				t.Fatalf("smtp-sink has %d messages, want %d", len(dumps), n)
			}
		})
	}
}
