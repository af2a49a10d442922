// Package testsmtp is an SMTP peer for tests: a go-smtp server with
// scripted behaviour that keeps the messages it accepts and the bytes
// its clients sent.
package testsmtp

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// MaxData bounds what the peer keeps of one message; the rest is read
// and dropped.
const MaxData = 1 << 20

// Message is a message the peer accepted.
type Message struct {
	From  string
	Rcpts []string
	Data  string
	Auth  string // the user that logged in, if any
	TLS   bool
	// AuthParam is MAIL FROM's AUTH= value, decoded.
	AuthParam string
}

// Peer is a go-smtp server. Its exported fields script its behaviour:
// set them in the configure function of Start or Listen, before it
// serves.
type Peer struct {
	Addr *net.TCPAddr

	// Domain is the name in its greeting and replies.
	Domain string
	// RejectRcpt refuses these recipients with their error.
	RejectRcpt map[string]*smtp.SMTPError
	// RejectMail, when set, refuses every MAIL FROM with it.
	RejectMail *smtp.SMTPError
	// DropAfterDot closes the connection instead of replying to the
	// final dot.
	DropAfterDot bool
	// SlowMail delays the reply to MAIL FROM.
	SlowMail time.Duration
	// DeferMessages is how many messages to refuse with a 451 after the
	// final dot before accepting one.
	DeferMessages int
	// Mechanisms are the AUTH mechanisms offered (PLAIN, LOGIN,
	// CRAM-MD5); Users the accounts and passwords they accept.
	Mechanisms []string
	Users      map[string]string
	// TLSConfig, when set, offers STARTTLS.
	TLSConfig *tls.Config

	t        testing.TB
	mu       sync.Mutex
	messages []Message
	deferred int
	raw      bytes.Buffer
	// open counts connections not yet ended: Wire waits for them, since
	// a client such as qmail-remote exits right after writing QUIT,
	// before the peer may have read it.
	open sync.WaitGroup
}

// Listen starts a peer on host with an ephemeral port.
func Listen(t testing.TB, host string, configure func(*Peer)) *Peer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return Start(t, ln, configure)
}

// Start serves SMTP on ln until the test ends; configure, when not nil,
// sets the peer's behaviour before it serves.
func Start(t testing.TB, ln net.Listener, configure func(*Peer)) *Peer {
	t.Helper()
	p := &Peer{t: t, Addr: ln.Addr().(*net.TCPAddr), Domain: "peer.test.example",
		RejectRcpt: map[string]*smtp.SMTPError{}, Users: map[string]string{}}
	if configure != nil {
		configure(p)
	}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{p: p, conn: c}, nil
	}))
	s.Domain = p.Domain
	s.AllowInsecureAuth = true
	s.TLSConfig = p.TLSConfig
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.ErrorLog = quietLog{}
	go s.Serve(recordingListener{ln, p})
	t.Cleanup(func() { s.Close() })
	return p
}

// IP is the peer's address, as a client names it in its reports.
func (p *Peer) IP() string { return p.Addr.IP.String() }

// Received returns the messages accepted so far.
func (p *Peer) Received() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.messages...)
}

// Deferrals is how many messages were refused for DeferMessages.
func (p *Peer) Deferrals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deferred
}

// Wire is what clients sent, exactly as it was on the wire, once every
// connection has ended.
func (p *Peer) Wire() string {
	ended := make(chan struct{})
	go func() { p.open.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		p.t.Error("a connection to the peer is still open after 10 s")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

type quietLog struct{}

func (quietLog) Printf(string, ...interface{}) {}
func (quietLog) Println(...interface{})        {}

type recordingConn struct {
	net.Conn
	p    *Peer
	once *sync.Once
}

func (c recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.p.mu.Lock()
	c.p.raw.Write(b[:n])
	c.p.mu.Unlock()
	if err != nil {
		c.ended()
	}
	return n, err
}

func (c recordingConn) Close() error {
	c.ended()
	return c.Conn.Close()
}

func (c recordingConn) ended() { c.once.Do(c.p.open.Done) }

type recordingListener struct {
	net.Listener
	p *Peer
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.p.open.Add(1)
	return recordingConn{c, l.p, new(sync.Once)}, nil
}

type session struct {
	p    *Peer
	conn *smtp.Conn
	msg  Message
	user string
}

func (s *session) Reset()        { s.msg = Message{} }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.p.SlowMail > 0 {
		time.Sleep(s.p.SlowMail)
	}
	if s.p.RejectMail != nil {
		return s.p.RejectMail
	}
	s.msg = Message{From: from, Auth: s.user}
	_, s.msg.TLS = s.conn.TLSConnectionState()
	if opts != nil && opts.Auth != nil {
		s.msg.AuthParam = *opts.Auth
	}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.p.RejectRcpt[to]; e != nil {
		return e
	}
	s.msg.Rcpts = append(s.msg.Rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, MaxData))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, r)
	s.msg.Data = string(b)
	if s.p.DropAfterDot {
		s.conn.Conn().Close()
		return errors.New("dropped")
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.deferred < s.p.DeferMessages {
		s.p.deferred++
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not now, try again"}
	}
	s.p.messages = append(s.p.messages, s.msg)
	return nil
}

func (s *session) AuthMechanisms() []string { return s.p.Mechanisms }

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if want, ok := s.p.Users[user]; ok && want == pass {
			s.user = user
			return nil
		}
		return smtp.ErrAuthFailed
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return errors.New("identity mismatch")
			}
			return check(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	case "CRAM-MD5":
		return &cramServer{users: s.p.Users, domain: s.p.Domain, done: func(u string) { s.user = u }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN (go-sasl has only the
// client).
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if resp != nil {
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// cramServer is the server side of CRAM-MD5 (RFC 2195).
type cramServer struct {
	users     map[string]string
	domain    string
	challenge []byte
	done      func(string)
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		c.challenge = []byte("<1896.697170952@" + c.domain + ">")
		return c.challenge, false, nil
	}
	user, digest, ok := strings.Cut(string(resp), " ")
	pass, known := c.users[user]
	if !ok || !known {
		return nil, true, smtp.ErrAuthFailed
	}
	mac := hmac.New(md5.New, []byte(pass))
	mac.Write(c.challenge)
	if digest != hex.EncodeToString(mac.Sum(nil)) {
		return nil, true, smtp.ErrAuthFailed
	}
	c.done(user)
	return nil, true, nil
}
