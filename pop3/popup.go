package pop3

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// LoginResult is how one run of the checkpassword chain ended.
type LoginResult struct {
	ExitCode int  // the chain's exit code (0 after a served session)
	Crashed  bool // killed by a signal
}

// Login runs the checkpassword chain once: authData goes to its fd 3,
// and the chain (qmail-pop3d, once the password is right) speaks POP3 on
// conn. pending is input the client already sent after the PASS or APOP
// line.
type Login func(authData []byte, conn io.ReadWriter, pending []byte) (LoginResult, error)

// Popup is qmail-popup: the authorization state of one connection.
type Popup struct {
	Hostname    string // the name in the greeting's timestamp
	Timeout     time.Duration
	CertPath    string // control/servercert.pem: enables STLS (and CAPA)
	ImplicitTLS bool   // POP3S: TLS from the first byte
	Login       Login
	Pid         int
	Now         func() time.Time
}

// Serve runs the session. qmail-popup always exits 1 afterwards; the
// returned error says why the session ended, for the log.
func (p *Popup) Serve(conn io.ReadWriter) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout * time.Second
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	s := &popupSession{p: p, conn: conn, timeout: timeout}
	if p.ImplicitTLS {
		conf, err := s.tlsConfig()
		if err != nil {
			return err
		}
		if err := s.handshake(conf); err != nil {
			return err
		}
	} else {
		s.setConn(conn)
	}
	timestamp := "<" + strconv.Itoa(p.Pid) + "." + strconv.FormatInt(now().Unix(), 10) + "@" + p.Hostname + ">"
	s.out.WriteString("+OK " + timestamp + "\r\n")
	for {
		if err := s.out.Flush(); err != nil {
			return err
		}
		cmd, err := ReadCommand(s.in)
		if err != nil {
			if errors.Is(err, ErrLineTooLong) {
				s.err("line too long")
				s.out.Flush()
			}
			return err
		}
		switch {
		case cmd.is("user"):
			if cmd.Arg == "" {
				s.err("syntax error")
				continue
			}
			s.ok()
			s.user, s.seenUser = cmd.Arg, true
		case cmd.is("pass"):
			if !s.seenUser {
				s.err("USER first")
				continue
			}
			if cmd.Arg == "" {
				s.err("syntax error")
				continue
			}
			return s.login(s.user, cmd.Arg, timestamp)
		case cmd.is("apop"):
			// The digest is everything after the first space.
			user, digest, found := strings.Cut(cmd.Arg, " ")
			if !found {
				s.err("syntax error")
				continue
			}
			return s.login(user, digest, timestamp)
		case cmd.is("quit"):
			s.ok()
			return s.out.Flush()
		case cmd.is("noop"):
			s.ok()
		case cmd.is("capa") && s.tlsOffered():
			s.capa()
		case cmd.is("stls") && s.tlsOffered() && !s.inTLS:
			if cmd.Arg != "" {
				s.err("syntax error")
				continue
			}
			conf, err := s.tlsConfig()
			if err != nil {
				// A broken certificate file: say so and stay in clear.
				s.err("TLS unavailable: unable to load certificate")
				continue
			}
			s.out.WriteString("+OK begin TLS negotiation\r\n")
			if err := s.out.Flush(); err != nil {
				return err
			}
			if err := s.handshake(conf); err != nil {
				return err
			}
		default:
			s.err("authorization first")
		}
	}
}

type popupSession struct {
	p        *Popup
	conn     io.ReadWriter // the connection, TLS once negotiated
	timeout  time.Duration
	in       *bufio.Reader
	out      *bufio.Writer
	inTLS    bool
	user     string
	seenUser bool
}

func (s *popupSession) setConn(c io.ReadWriter) {
	s.conn = c
	tc := newTimedConn(c, s.timeout)
	s.in = bufio.NewReaderSize(tc, 512)
	s.out = bufio.NewWriterSize(tc, 512)
}

func (s *popupSession) ok()            { s.out.WriteString("+OK \r\n") }
func (s *popupSession) err(msg string) { s.out.WriteString("-ERR " + msg + "\r\n") }

// tlsOffered tells whether STLS can be offered: a certificate is
// installed and the connection is a socket.
func (s *popupSession) tlsOffered() bool {
	if s.p.CertPath == "" {
		return false
	}
	if _, ok := s.conn.(net.Conn); !ok {
		return false
	}
	_, err := os.Stat(s.p.CertPath)
	return err == nil
}

// capa lists the capabilities (RFC 2449) when TLS is configured, so that
// clients find STLS; without a certificate CAPA stays unknown, as in qmail.
func (s *popupSession) capa() {
	s.out.WriteString("+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n")
	if !s.inTLS {
		s.out.WriteString("STLS\r\n")
	}
	s.out.WriteString(".\r\n")
}

// tlsConfig loads the certificate and key of control/servercert.pem.
func (s *popupSession) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.p.CertPath, s.p.CertPath)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", s.p.CertPath, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// handshake starts TLS on the connection. Input the client sent before
// the handshake is discarded, and the USER given before is forgotten.
func (s *popupSession) handshake(conf *tls.Config) error {
	raw, ok := s.conn.(net.Conn)
	if !ok {
		return errors.New("TLS needs a socket connection")
	}
	conn := tls.Server(raw, conf)
	raw.SetDeadline(time.Now().Add(s.timeout))
	if err := conn.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	raw.SetDeadline(time.Time{})
	s.inTLS = true
	s.user, s.seenUser = "", false
	s.setConn(conn)
	return nil
}

// login runs the checkpassword chain with user, password and timestamp
// on fd 3, then reports a failure; one attempt per connection.
func (s *popupSession) login(user, password, timestamp string) error {
	data := make([]byte, 0, len(user)+len(password)+len(timestamp)+3)
	data = append(data, user...)
	data = append(data, 0)
	data = append(data, password...)
	data = append(data, 0)
	data = append(data, timestamp...)
	data = append(data, 0)
	var pending []byte
	if n := s.in.Buffered(); n > 0 {
		pending, _ = s.in.Peek(n)
	}
	res, err := s.p.Login(data, s.conn, pending)
	clear(data)
	if err != nil {
		// qmail's texts for a chain that cannot be started.
		s.err(err.Error())
		s.out.Flush()
		return err
	}
	switch {
	case res.Crashed:
		s.err("aack, child crashed")
	case res.ExitCode != 0:
		s.err("authorization failed")
	}
	s.out.Flush()
	return nil
}
