package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/goqmail/goqmail/dns"
	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsmtp"
)

// routedHome is a qmail home whose smtproutes send dest.example to
// route (for example "[127.0.0.1]:PORT").
func routedHome(t *testing.T, route string) string {
	t.Helper()
	home := testenv.NewHome(t)
	testenv.WriteControl(t, home, "smtproutes", "dest.example:"+route+"\n")
	return home
}

func literalRoute(p *testsmtp.Peer) string {
	return fmt.Sprintf("[%s]:%d", p.Addr.IP, p.Addr.Port)
}

func wantReports(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("reports %q, want %q", got, want)
	}
	for i := range want {
		if strings.HasSuffix(want[i], "*") {
			if !strings.HasPrefix(got[i], strings.TrimSuffix(want[i], "*")) {
				t.Fatalf("report %d = %q, want prefix %q", i, got[i], want[i])
			}
		} else if got[i] != want[i] {
			t.Fatalf("report %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// dataOnWire is what the client sent after DATA's 354, through the final
// dot.
func dataOnWire(t *testing.T, wire string) string {
	t.Helper()
	i := strings.Index(wire, "DATA\r\n")
	if i < 0 {
		t.Fatalf("no DATA on the wire: %q", wire)
	}
	rest := wire[i+len("DATA\r\n"):]
	end := strings.Index(rest, "\r\n.\r\n")
	if end < 0 {
		if strings.HasPrefix(rest, ".\r\n") {
			return ".\r\n"
		}
		t.Fatalf("no end of data: %q", rest)
	}
	return rest[:end+len("\r\n.\r\n")]
}

func TestDeliverToGoSMTP(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", nil)
	home := routedHome(t, literalRoute(p))
	msg := "Subject: hi\n\nbody\n.dot line\n"
	reports := testsmtp.RunRemote(t, home, msg, "dest.example", "from@testhost.example", "to@dest.example")
	wantReports(t, reports, "r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")
	got := p.Received()
	if len(got) != 1 || got[0].From != "from@testhost.example" || strings.Join(got[0].Rcpts, ",") != "to@dest.example" {
		t.Fatalf("peer got %+v", got)
	}
	if got[0].Data != "Subject: hi\r\n\r\nbody\r\n.dot line\r\n" {
		t.Fatalf("data %q", got[0].Data)
	}
	wire := p.Wire()
	for _, want := range []string{"EHLO testhost.example\r\n", "MAIL FROM:<from@testhost.example> SIZE=28 BODY=8BITMIME\r\nRCPT TO:<to@dest.example>\r\nDATA\r\n", "QUIT\r\n"} {
		if !strings.Contains(wire, want) {
			t.Errorf("wire lacks %q (pipelined): %q", want, wire)
		}
	}
	checkWire(t, dataOnWire(t, wire))
}

func TestSmugglingSafe(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", nil)
	home := routedHome(t, literalRoute(p))
	msg := "Subject: x\n\na\n.\nMAIL FROM:<evil@x>\nb\r.\rRCPT TO:<victim@y>\r\n.\r\nDATA\rc\r\n.\n..\n.\r\n"
	reports := testsmtp.RunRemote(t, home, msg, "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")
	got := p.Received()
	if len(got) != 1 {
		t.Fatalf("peer got %d messages: %+v", len(got), got)
	}
	want := "Subject: x\r\n\r\na\r\n.\r\nMAIL FROM:<evil@x>\r\nb\r\n.\r\nRCPT TO:<victim@y>\r\n.\r\nDATA\r\nc\r\n.\r\n..\r\n.\r\n"
	if got[0].Data != want {
		t.Fatalf("data\n%q\nwant\n%q", got[0].Data, want)
	}
	wire := p.Wire()
	checkWire(t, dataOnWire(t, wire))
	if n := strings.Count(wire, "MAIL FROM:"); n != 2 { // ours, and the one inside the body
		t.Fatalf("MAIL FROM count %d", n)
	}
}

func TestPartialFinalLine(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", nil)
	home := routedHome(t, literalRoute(p))
	reports := testsmtp.RunRemote(t, home, "Subject: x\n\nno newline", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "r", "DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n")
	if got := p.Received(); len(got) != 0 {
		t.Fatalf("peer accepted %+v", got)
	}
}

func TestRecipientRejections(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) {
		p.RejectRcpt["hard@dest.example"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		p.RejectRcpt["soft@dest.example"] = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	})
	home := routedHome(t, literalRoute(p))
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "hard@dest.example", "soft@dest.example", "ok@dest.example")
	wantReports(t, reports,
		"h127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 no such user\n",
		"s127.0.0.1 does not like recipient.\nRemote host said: 451 4.3.0 try later\n",
		"r",
		"K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")
	if got := p.Received(); len(got) != 1 || strings.Join(got[0].Rcpts, ",") != "ok@dest.example" {
		t.Fatalf("peer got %+v", got)
	}

	reports = testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "hard@dest.example")
	wantReports(t, reports,
		"h127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 no such user\n",
		"DGiving up on 127.0.0.1.\n")
	if got := p.Received(); len(got) != 1 {
		t.Fatalf("a message without recipients was accepted: %+v", got)
	}
}

func TestSenderRejected(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) {
		p.RejectMail = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "go away"}
	})
	home := routedHome(t, literalRoute(p))
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "DConnected to 127.0.0.1 but sender was rejected.\nRemote host said: 553 5.7.1 go away\n")
}

func TestDropAfterDot(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) { p.DropAfterDot = true })
	home := routedHome(t, literalRoute(p))
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "r", "ZConnected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)\n")
}

func TestSlowPeer(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) { p.SlowMail = 4 * time.Second })
	home := routedHome(t, literalRoute(p))
	testenv.WriteControl(t, home, "timeoutremote", "1\n")
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "ZConnected to 127.0.0.1 but connection died. (#4.4.2)\n")
}

func TestNoConnection(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // nothing listens there now
	home := routedHome(t, fmt.Sprintf("[127.0.0.1]:%d", addr.Port))
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n")
}

func TestUsage(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t)
	wantReports(t, testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@x"), "DI (qmail-remote) was invoked improperly. (#5.3.5)\n")
}

func TestAddressWithLineBreak(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", nil)
	home := routedHome(t, literalRoute(p))
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t\r\nRCPT TO:<x@y>@dest.example")
	wantReports(t, reports, "DSMTP cannot transfer addresses containing CR or LF. (#5.1.3)\n")
}

func TestQuotedAddresses(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", nil)
	home := routedHome(t, literalRoute(p))
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "", "a b@dest.example")
	wantReports(t, reports, "r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")
	if wire := p.Wire(); !strings.Contains(wire, "MAIL FROM:<> ") || !strings.Contains(wire, "RCPT TO:<\"a b\"@dest.example>\r\n") {
		t.Fatalf("wire %q", wire)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mechanisms []string
		password   string
		wantMech   string
		report     string
	}{
		{"plain", []string{"PLAIN"}, "secret", "AUTH PLAIN\r\n", "K127.0.0.1 accepted message.\n*"},
		{"login", []string{"LOGIN"}, "secret", "AUTH LOGIN\r\n", "K127.0.0.1 accepted message.\n*"},
		{"cram preferred", []string{"LOGIN", "PLAIN", "CRAM-MD5"}, "secret", "AUTH CRAM-MD5\r\n", "K127.0.0.1 accepted message.\n*"},
		{"plain before login", []string{"LOGIN", "PLAIN"}, "secret", "AUTH PLAIN\r\n", "K127.0.0.1 accepted message.\n*"},
		{"plain rejected", []string{"PLAIN"}, "wrong", "AUTH PLAIN\r\n", "ZConnected to 127.0.0.1 but authentication was rejected (plain)..\nRemote host said: 535 5.7.8 Authentication failed\n"},
		{"login rejected", []string{"LOGIN"}, "wrong", "AUTH LOGIN\r\n", "ZConnected to 127.0.0.1 but authentication was rejected (password)..\nRemote host said: 535 5.7.8 Authentication failed\n"},
		{"cram rejected", []string{"CRAM-MD5"}, "wrong", "AUTH CRAM-MD5\r\n", "ZConnected to 127.0.0.1 but authentication was rejected (username+digest)..\nRemote host said: 535 5.7.8 Authentication failed\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) {
				p.Mechanisms = tc.mechanisms
				p.Users["joe+x=y@example.org"] = "secret"
			})
			home := routedHome(t, literalRoute(p)+"|joe+x=y@example.org|"+tc.password)
			reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
			if strings.HasPrefix(tc.report, "K") {
				wantReports(t, reports, "r", tc.report)
				got := p.Received()
				if len(got) != 1 || got[0].Auth != "joe+x=y@example.org" || got[0].AuthParam != "joe+x=y@example.org" {
					t.Fatalf("peer got %+v", got)
				}
				if !strings.Contains(p.Wire(), "MAIL FROM:<f@testhost.example> AUTH=joe+2Bx+3Dy@example.org ") {
					t.Fatalf("no AUTH= on MAIL FROM: %q", p.Wire())
				}
			} else {
				wantReports(t, reports, tc.report)
			}
			if !strings.Contains(p.Wire(), tc.wantMech) {
				t.Fatalf("wire lacks %q: %q", tc.wantMech, p.Wire())
			}
		})
	}
}

func TestAuthsenders(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) {
		p.Mechanisms = []string{"PLAIN"}
		p.Users["boss"] = "pw"
	})
	home := testenv.NewHome(t)
	// authsenders wins over smtproutes, which points nowhere useful.
	testenv.WriteControl(t, home, "smtproutes", "dest.example:[127.0.0.1]:1\n")
	testenv.WriteControl(t, home, "authsenders", "@testhost.example:"+literalRoute(p)+"|boss|pw\n")
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "me@testhost.example", "t@dest.example")
	wantReports(t, reports, "r", "K127.0.0.1 accepted message.\n*")
	if got := p.Received(); len(got) != 1 || got[0].Auth != "boss" {
		t.Fatalf("peer got %+v", got)
	}
	// "boss" is no mailbox: RFC 4954 has it announced as <>.
	if !strings.Contains(p.Wire(), "MAIL FROM:<me@testhost.example> AUTH=<> ") {
		t.Fatalf("wire %q", p.Wire())
	}
}

// tlsSetup is a DNS server naming the peer mx.test.example and a home
// routing dest.example there, so that tlshosts/mx.test.example.pem
// applies.
func tlsSetup(t *testing.T, p *testsmtp.Peer) string {
	t.Helper()
	server := startDNS(t, newZone(t, "mx.test.example. 300 IN A 127.0.0.1"))
	home := routedHome(t, fmt.Sprintf("mx.test.example:%d", p.Addr.Port))
	testenv.WriteControl(t, home, "dnsservers", server+"\n")
	return home
}

func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

func TestSTARTTLS(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	good, _ := ca.issue(t, "mx.test.example", []string{"mx.test.example"}, false)
	wrongName, _ := ca.issue(t, "other.test.example", []string{"other.test.example"}, false)
	cnOnly, _ := ca.issue(t, "mx.test.example", nil, false)
	otherCA := newCA(t)
	foreign, _ := otherCA.issue(t, "mx.test.example", []string{"mx.test.example"}, false)
	const pemFile = "control/tlshosts/mx.test.example.pem"
	tests := []struct {
		name     string
		cert     *tls.Certificate // nil: no STARTTLS offered
		required bool
		notls    bool
		report   string
		wantTLS  bool
	}{
		{"opportunistic", &good, false, false, "K127.0.0.1 accepted message.\n*", true},
		{"opportunistic unverifiable", &foreign, false, false, "K127.0.0.1 accepted message.\n*", true},
		{"not offered", nil, false, false, "K127.0.0.1 accepted message.\n*", false},
		{"notlshosts", &good, false, true, "K127.0.0.1 accepted message.\n*", false},
		{"required", &good, true, false, "K127.0.0.1 accepted message.\n*", true},
		{"required common name", &cnOnly, true, false, "K127.0.0.1 accepted message.\n*", true},
		{"required not offered", nil, true, false, "ZNo TLS achieved while " + pemFile + " exists; connecting to 127.0.0.1.\n", false},
		{"required wrong name", &wrongName, true, false, "ZTLS unable to verify server mx.test.example: received certificate for other.test.example; connected to 127.0.0.1.\n", false},
		{"required foreign CA", &foreign, true, false, "ZTLS unable to verify server with " + pemFile + ": *", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) {
				if tc.cert != nil {
					p.TLSConfig = serverTLS(*tc.cert)
				}
			})
			home := tlsSetup(t, p)
			if tc.required {
				os.MkdirAll(filepath.Join(home, "control", "tlshosts"), 0o755)
				testenv.WriteControl(t, home, "tlshosts/mx.test.example.pem", string(ca.certPEM))
			}
			if tc.notls {
				os.MkdirAll(filepath.Join(home, "control", "notlshosts"), 0o755)
				testenv.WriteControl(t, home, "notlshosts/mx.test.example", "")
			}
			reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
			if strings.HasPrefix(tc.report, "K") {
				wantReports(t, reports, "r", tc.report)
				got := p.Received()
				if len(got) != 1 || got[0].TLS != tc.wantTLS {
					t.Fatalf("peer got %+v, want TLS %v", got, tc.wantTLS)
				}
			} else {
				wantReports(t, reports, tc.report)
				if got := p.Received(); len(got) != 0 {
					t.Fatalf("message sent without the required TLS: %+v", got)
				}
			}
		})
	}
}

func TestClientCertificate(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	serverCert, _ := ca.issue(t, "mx.test.example", []string{"mx.test.example"}, false)
	_, clientPEM := ca.issue(t, "client.test.example", []string{"client.test.example"}, true)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	var mu sync.Mutex
	var seen []string
	p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) {
		cfg := serverTLS(serverCert)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pool
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			mu.Lock()
			defer mu.Unlock()
			if len(cs.PeerCertificates) > 0 {
				seen = append(seen, cs.PeerCertificates[0].Subject.CommonName)
			}
			return nil
		}
		p.TLSConfig = cfg
	})
	home := tlsSetup(t, p)
	testenv.WriteControl(t, home, "clientcert.pem", string(clientPEM))
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "r", "K127.0.0.1 accepted message.\n*")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "client.test.example" {
		t.Fatalf("client certificates seen: %q", seen)
	}
}

func TestImplicitTLS465(t *testing.T) {
	t.Parallel()
	// Port 465 cannot be used in a test; the session's implicit mode is
	// what a route to port 465 selects, driven here over a real go-smtp
	// server speaking TLS from the first byte.
	ca := newCA(t)
	cert, _ := ca.issue(t, "mx.test.example", []string{"mx.test.example"}, false)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	testsmtp.Start(t, ln, nil)
	home := testenv.NewHome(t)
	d := &Delivery{
		Home: home, Host: "dest.example", Sender: "f@testhost.example", Recipients: []string{"t@dest.example"},
		Message: strings.NewReader("x\n"), Size: -1,
	}
	cfg, err := readSettings(home)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess := &session{ctl: cfg.ctl, timeout: 30 * time.Second, partner: "127.0.0.1", fqdn: "mx.test.example",
		helohost: cfg.helohost, route: Route{Port: 465}, implicit: true, sender: d.Sender,
		recipients: d.Recipients, message: d.Message, size: -1}
	sess.tcp = &deadlineConn{Conn: conn, timeout: 30 * time.Second}
	sess.setConn(sess.tcp)
	o := sess.run()
	if o.Kind != 'K' || !strings.HasPrefix(o.Text, "127.0.0.1 accepted message.\n") || !sess.tlsOn {
		t.Fatalf("outcome %c%q, TLS %v", o.Kind, o.Text, sess.tlsOn)
	}
}

func TestIPv6Relay(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	ln.Close()
	p := testsmtp.Listen(t, "::1", nil)
	home := routedHome(t, fmt.Sprintf("[::1]:%d", p.Addr.Port))
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "r", "K::1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")
	testenv.WriteControl(t, home, "ipv6", "0\n")
	reports = testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "DSorry, I couldn't find a mail exchanger or IP address. (#5.4.4)\n")
}

func TestDNSOutcomes(t *testing.T) {
	t.Parallel()
	z := newZone(t,
		"nomail.example. 300 IN MX 0 .",
		"noaddr.example. 300 IN MX 10 mx.noaddr.example.",
		"self.example. 300 IN MX 10 mx.self.example.",
		"mx.self.example. 300 IN A 127.0.0.1",
		"mx.noaddr.example. 300 IN TXT \"nothing\"",
	)
	z.nxdomain["nx.example."] = true
	z.servfail["broken.example."] = true
	server := startDNS(t, z)
	home := testenv.NewHome(t)
	testenv.WriteControl(t, home, "dnsservers", server+"\n")
	tests := []struct{ host, report string }{
		{"nx.example", "DSorry, I couldn't find any host named nx.example. (#5.1.2)\n"},
		{"broken.example", "ZSorry, I couldn't find any host by that name. (#4.1.2)\n"},
		{"nomail.example", "D*"},
		{"noaddr.example", "DSorry, I couldn't find a mail exchanger or IP address. (#5.4.4)\n"},
		{"self.example", "DSorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n"},
	}
	for _, tc := range tests {
		reports := testsmtp.RunRemote(t, home, "x\n", tc.host, "f@testhost.example", "t@"+tc.host)
		wantReports(t, reports, tc.report)
	}
}

// TestMXOrder delivers through the DNS path: exchangers in preference
// order, the unreachable best one skipped, our own address (127.0.0.1)
// and everything less preferred than it never tried. MX targets use port
// 25, which a test cannot listen on, so this runs the package with
// Delivery.Port set.
func TestMXOrder(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.3", nil)
	z := newZone(t,
		"order.example. 300 IN MX 20 mx2.order.example.",
		"order.example. 300 IN MX 10 mx1.order.example.",
		"order.example. 300 IN MX 30 self.order.example.",
		"order.example. 300 IN MX 40 mx4.order.example.",
		"mx1.order.example. 300 IN A 127.0.0.2",
		"mx2.order.example. 300 IN A 127.0.0.3",
		"self.order.example. 300 IN A 127.0.0.1",
		"mx4.order.example. 300 IN A 127.0.0.4",
	)
	server := startDNS(t, z)
	home := testenv.NewHome(t)
	var mu sync.Mutex
	var tried []string
	dialer := &net.Dialer{}
	resolver := dns.New(dns.Config{Servers: []string{server}, Timeout: 5 * time.Second, Attempts: 2}, dns.Options{DisableIPv6: true})
	d := &Delivery{
		Home: home, Host: "order.example", Sender: "f@testhost.example", Recipients: []string{"t@order.example"},
		Message: strings.NewReader("x\n"), Size: 2, Resolver: resolver, Port: p.Addr.Port,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			tried = append(tried, addr)
			mu.Unlock()
			return dialer.DialContext(ctx, network, addr)
		},
	}
	var out strings.Builder
	if err := Run(d, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "r\x00K127.0.0.3 accepted message.\n") {
		t.Fatalf("reports %q", got)
	}
	port := fmt.Sprint(p.Addr.Port)
	if want := []string{"127.0.0.2:" + port, "127.0.0.3:" + port}; strings.Join(tried, " ") != strings.Join(want, " ") {
		t.Fatalf("tried %q, want %q", tried, want)
	}
	if len(p.Received()) != 1 {
		t.Fatal("not delivered")
	}
}

// startSink runs Postfix's smtp-sink with extra options and returns its
// port and dump directory (one file per transaction).
func startSink(t *testing.T, extra ...string) (int, string) {
	t.Helper()
	sink := testenv.Tool(t, "smtp-sink", "postfix")
	// smtp-sink drops root privileges to nobody, who cannot enter
	// t.TempDir()'s private parent: the dump directory lives in /tmp.
	dir, err := os.MkdirTemp("", "goqmail-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// smtp-sink takes a port number, not a socket: borrow a free
	// ephemeral port from the kernel.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := append([]string{"-d", filepath.Join(dir, "msg.")}, extra...)
	args = append(args, fmt.Sprintf("127.0.0.1:%d", port), "10")
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(sink, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ { // wait until it listens
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("smtp-sink does not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return port, dir
}

func sinkDumps(t *testing.T, dir string, want int) []string {
	t.Helper()
	var files []string
	for i := 0; i < 100; i++ {
		files, _ = filepath.Glob(filepath.Join(dir, "msg.*"))
		if len(files) >= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var dumps []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dumps = append(dumps, string(b))
	}
	return dumps
}

func TestSMTPSink(t *testing.T) {
	t.Parallel()
	port, dir := startSink(t)
	home := routedHome(t, fmt.Sprintf("[127.0.0.1]:%d", port))
	msg := "Subject: sink\n\n.\nline\r.\rend\n"
	reports := testsmtp.RunRemote(t, home, msg, "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 Ok\n")
	dumps := sinkDumps(t, dir, 1)
	if len(dumps) != 1 || !strings.Contains(dumps[0], "Subject: sink\n\n.\nline\n.\nend\n") || !strings.Contains(dumps[0], "X-Client-Proto: ESMTP") {
		t.Fatalf("dumps %q", dumps)
	}
}

func TestSMTPSinkFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		reports []string
		proto   string // X-Client-Proto of a delivered message
	}{
		{"EHLO refused, HELO works", []string{"-f", "EHLO"}, []string{"r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 Ok\n"}, "SMTP"},
		{"no ESMTP", []string{"-e"}, []string{"r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 Ok\n"}, "SMTP"},
		{"name rejected", []string{"-f", "EHLO,HELO"}, []string{"DConnected to 127.0.0.1 but my name was rejected.\nRemote host said: 500 5.3.0 Error: command failed\n"}, ""},
		{"greeting 421", []string{"-Q", "CONNECT"}, []string{"ZConnected to 127.0.0.1 but greeting failed.\nRemote host said: 421 *"}, ""},
		{"sender soft", []string{"-r", "MAIL"}, []string{"ZConnected to 127.0.0.1 but sender was rejected.\nRemote host said: 450 4.3.0 Error: command failed\n"}, ""},
		{"recipient soft", []string{"-r", "RCPT"}, []string{"s127.0.0.1 does not like recipient.\nRemote host said: 450 4.3.0 Error: command failed\n", "DGiving up on 127.0.0.1.\n"}, ""},
		{"DATA hard", []string{"-f", "DATA"}, []string{"r", "D127.0.0.1 failed on DATA command.\nRemote host said: 500 5.3.0 Error: command failed\n"}, ""},
		{"dot soft", []string{"-r", "."}, []string{"r", "Z127.0.0.1 failed after I sent the message.\nRemote host said: 450 4.3.0 Error: command failed\n"}, ""},
		{"drop after dot", []string{"-q", "."}, []string{"r", "ZConnected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)\n"}, ""},
		{"drop at DATA", []string{"-q", "DATA"}, []string{"r", "ZConnected to 127.0.0.1 but connection died. (#4.4.2)\n"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			port, dir := startSink(t, tc.args...)
			home := routedHome(t, fmt.Sprintf("[127.0.0.1]:%d", port))
			reports := testsmtp.RunRemote(t, home, "Subject: x\n\nbody\n", "dest.example", "f@testhost.example", "t@dest.example")
			wantReports(t, reports, tc.reports...)
			if tc.proto != "" {
				dumps := sinkDumps(t, dir, 1)
				if len(dumps) != 1 || !strings.Contains(dumps[0], "X-Client-Proto: "+tc.proto+"\n") {
					t.Fatalf("dumps %q", dumps)
				}
			}
		})
	}
}

func TestTCPTOTools(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t)
	path := TCPTOPath(home)
	now := time.Now()
	tt := NewTCPTO(path, 1, func() time.Time { return now.Add(-200 * time.Second) })
	tt.Record(netip.MustParseAddr("192.0.2.9"), true)
	tt.now = func() time.Time { return now.Add(-30 * time.Second) }
	tt.Record(netip.MustParseAddr("198.51.100.1"), true)
	// Written by a clock an hour ahead: tcpto.c's 64-bit unsigned
	// arithmetic shows a huge age.
	tt.now = func() time.Time { return now.Add(time.Hour) }
	tt.Record(netip.MustParseAddr("203.0.113.5"), true)
	run := func(name string) string {
		cmd := exec.Command(testenv.Program(t, name))
		cmd.Env = append(os.Environ(), "QMAILHOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", name, err, out)
		}
		return string(out)
	}
	out := run("qmail-tcpto")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "192.0.2.9 timed out 2") || !strings.HasSuffix(lines[0], " seconds ago; # recent timeouts: 1") ||
		!strings.HasPrefix(lines[1], "198.51.100.1 timed out ") ||
		!strings.HasPrefix(lines[2], "203.0.113.5 timed out 184467440737095") {
		t.Fatalf("qmail-tcpto: %q", out)
	}
	if out := run("qmail-tcpok"); out != "" {
		t.Fatalf("qmail-tcpok said %q", out)
	}
	if out := run("qmail-tcpto"); out != "" {
		t.Fatalf("after qmail-tcpok: %q", out)
	}
	raw, err := os.ReadFile(path)
	if err != nil || len(raw) != 1024 || strings.Trim(string(raw), "\x00") != "" {
		t.Fatalf("tcpto after qmail-tcpok: %d bytes, %v", len(raw), err)
	}
	os.Remove(path)
	cmd := exec.Command(testenv.Program(t, "qmail-tcpok"))
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.HasPrefix(string(out), "qmail-tcpok: fatal: unable to write ") {
		t.Fatalf("qmail-tcpok without tcpto: %v %q", err, out)
	}
}

func TestSTARTTLSHandshakeFailure(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	cert, _ := ca.issue(t, "mx.test.example", []string{"mx.test.example"}, false)
	p := testsmtp.Listen(t, "127.0.0.1", func(p *testsmtp.Peer) {
		cfg := serverTLS(cert)
		cfg.MinVersion = tls.VersionTLS10
		cfg.MaxVersion = tls.VersionTLS11 // below our TLS 1.2 floor
		p.TLSConfig = cfg
	})
	home := tlsSetup(t, p)
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "ZTLS connect failed: *")
	if r := reports[0]; !strings.HasSuffix(r, "; connected to 127.0.0.1.\n") {
		t.Fatalf("report %q", r)
	}
	if got := p.Received(); len(got) != 0 {
		t.Fatalf("peer got %+v", got)
	}
}

// TestOneFinalDot: after the message's final dot the client says only
// QUIT. A second "." after the data would reach the peer as a command of
// its own.
func TestOneFinalDot(t *testing.T) {
	t.Parallel()
	p := testsmtp.Listen(t, "127.0.0.1", nil)
	home := routedHome(t, literalRoute(p))
	reports := testsmtp.RunRemote(t, home, "Subject: x\n\nbody\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "r", "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")
	wire := p.Wire()
	if want := "DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n"; !strings.HasSuffix(wire, want) {
		t.Fatalf("wire ends %q, want %q", wire[max(0, len(wire)-60):], want)
	}
}

// TestDrippingGreeting: a peer that sends its greeting a byte at a time,
// each byte well within timeoutremote, must not hold the delivery
// longer than timeoutremote for the whole reply (qmail-control: "wait
// for each response").
func TestDrippingGreeting(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		for _, c := range []byte("220-" + strings.Repeat("x", 12)) {
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		// A client still listening gets a complete greeting, then
		// refusals: its report would say "my name was rejected".
		conn.Write([]byte("\r\n220 ok\r\n"))
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
			if _, err := conn.Write([]byte("421 go away\r\n")); err != nil {
				return
			}
		}
	}()
	home := routedHome(t, fmt.Sprintf("[127.0.0.1]:%d", ln.Addr().(*net.TCPAddr).Port))
	testenv.WriteControl(t, home, "timeoutremote", "1\n")
	reports := testsmtp.RunRemote(t, home, "x\n", "dest.example", "f@testhost.example", "t@dest.example")
	wantReports(t, reports, "ZConnected to 127.0.0.1 but connection died. (#4.4.2)\n")
}
