package remote

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	mdns "github.com/miekg/dns"

	"github.com/goqmail/goqmail/internal/testenv"
)

// ---- the qmail-remote binary ----

// runRemote runs the built qmail-remote in home with msg as fd 0 (a
// regular file, as qmail-rspawn gives it) and returns its reports.
func runRemote(t *testing.T, home, msg string, args ...string) []string {
	t.Helper()
	msgPath := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(msgPath, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(msgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command(testenv.Program(t, "qmail-remote"), args...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qmail-remote: %v (stderr %q)", err, stderr.String())
	}
	if len(out) == 0 || out[len(out)-1] != 0 {
		t.Fatalf("reports not NUL-terminated: %q", out)
	}
	return strings.Split(string(out[:len(out)-1]), "\x00")
}

// lastReport is the message report: the last of the reports.
func lastReport(reports []string) string { return reports[len(reports)-1] }

// ---- a go-smtp peer ----

type received struct {
	From  string
	Rcpts []string
	Data  string
	Auth  string // user that logged in, if any
	TLS   bool
	// AuthParam is MAIL FROM's AUTH= value, decoded.
	AuthParam string
}

// peer is a go-smtp server with scripted behaviour; raw collects the
// bytes it read from clients, exactly as they were on the wire.
type peer struct {
	t        *testing.T
	addr     *net.TCPAddr
	server   *smtp.Server
	mu       sync.Mutex
	messages []received
	raw      bytes.Buffer
	// open counts connections not yet ended: wire waits for them, since
	// qmail-remote exits right after writing QUIT, before the peer may
	// have read it.
	open sync.WaitGroup

	rejectRcpt   map[string]*smtp.SMTPError
	rejectMail   *smtp.SMTPError
	dropAfterDot bool
	slowMail     time.Duration
	mechanisms   []string
	users        map[string]string
	tlsConfig    *tls.Config
}

type recordingConn struct {
	net.Conn
	p    *peer
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
	p *peer
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.p.open.Add(1)
	return recordingConn{c, l.p, new(sync.Once)}, nil
}

func newPeer(t *testing.T, host string, configure func(*peer)) *peer {
	t.Helper()
	p := &peer{t: t, rejectRcpt: map[string]*smtp.SMTPError{}, users: map[string]string{}}
	if configure != nil {
		configure(p)
	}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &peerSession{p: p, conn: c}, nil
	}))
	s.Domain = "peer.test.example"
	s.AllowInsecureAuth = true
	s.TLSConfig = p.tlsConfig
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.ErrorLog = log{}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().(*net.TCPAddr)
	p.server = s
	go s.Serve(recordingListener{ln, p})
	t.Cleanup(func() { s.Close() })
	return p
}

type log struct{}

func (log) Printf(string, ...interface{}) {}
func (log) Println(...interface{})        {}

func (p *peer) received() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.messages...)
}

// wire is what clients sent, once every connection has ended.
func (p *peer) wire() string {
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

type peerSession struct {
	p    *peer
	conn *smtp.Conn
	msg  received
	user string
}

func (s *peerSession) Reset()        { s.msg = received{} }
func (s *peerSession) Logout() error { return nil }
func (s *peerSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.p.slowMail > 0 {
		time.Sleep(s.p.slowMail)
	}
	if s.p.rejectMail != nil {
		return s.p.rejectMail
	}
	s.msg = received{From: from, Auth: s.user}
	_, s.msg.TLS = s.conn.TLSConnectionState()
	if opts != nil && opts.Auth != nil {
		s.msg.AuthParam = *opts.Auth
	}
	return nil
}
func (s *peerSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.p.rejectRcpt[to]; e != nil {
		return e
	}
	s.msg.Rcpts = append(s.msg.Rcpts, to)
	return nil
}
func (s *peerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = string(b)
	if s.p.dropAfterDot {
		s.conn.Conn().Close()
		return errors.New("dropped")
	}
	s.p.mu.Lock()
	s.p.messages = append(s.p.messages, s.msg)
	s.p.mu.Unlock()
	return nil
}

func (s *peerSession) AuthMechanisms() []string { return s.p.mechanisms }

func (s *peerSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if want, ok := s.p.users[user]; ok && want == pass {
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
		return &cramServer{users: s.p.users, done: func(u string) { s.user = u }}, nil
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
	challenge []byte
	done      func(string)
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		c.challenge = []byte("<1896.697170952@peer.test.example>")
		return c.challenge, false, nil
	}
	user, digest, ok := strings.Cut(string(resp), " ")
	pass, known := c.users[user]
	if !ok || !known {
		return nil, true, smtp.ErrAuthFailed
	}
	want := cramDigest(c.challenge, pass)
	if digest != want {
		return nil, true, smtp.ErrAuthFailed
	}
	c.done(user)
	return nil, true, nil
}

// ---- a test CA ----

type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "goqmail test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate for names (DNS names in the SAN; an empty
// list gives a certificate with only a common name cn).
func (ca *testCA) issue(t *testing.T, cn string, names []string, client bool) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, append(certPEM, keyPEM...)
}

// ---- a DNS server ----

// dnsZone maps "name./TYPE" to answers; names in nxdomain do not exist,
// names in servfail make the server fail.
type dnsZone struct {
	records  map[string][]mdns.RR
	nxdomain map[string]bool
	servfail map[string]bool
}

func newZone(t *testing.T, rrs ...string) *dnsZone {
	t.Helper()
	z := &dnsZone{records: map[string][]mdns.RR{}, nxdomain: map[string]bool{}, servfail: map[string]bool{}}
	for _, s := range rrs {
		rr, err := mdns.NewRR(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		key := strings.ToLower(rr.Header().Name) + "/" + mdns.TypeToString[rr.Header().Rrtype]
		z.records[key] = append(z.records[key], rr)
	}
	return z
}

// startDNS serves z on UDP and TCP at 127.0.0.1 and returns "ip:port".
func startDNS(t *testing.T, z *dnsZone) string {
	t.Helper()
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		name := strings.ToLower(q.Question[0].Name)
		switch {
		case z.servfail[name]:
			m.Rcode = mdns.RcodeServerFailure
		case z.nxdomain[name]:
			m.Rcode = mdns.RcodeNameError
		default:
			m.Answer = z.records[name+"/"+mdns.TypeToString[q.Question[0].Qtype]]
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }
