package smtpd_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

// clientCert makes a CA and a client certificate (serial 11) signed by
// it whose subject carries emailAddress.
func clientCert(t *testing.T, email string) (caPEM []byte, cert tls.Certificate) {
	caPEM, cert, _ = clientCertCRL(t, email)
	return caPEM, cert
}

// clientCertCRL is clientCert that also gives a maker of current CRLs of
// the CA, revoking the given serials.
func clientCertCRL(t *testing.T, email string) (caPEM []byte, cert tls.Certificate, crl func(serials ...int64) []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(11),
		Subject: pkix.Name{CommonName: "client", ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: email}}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	crl = func(serials ...int64) []byte {
		tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
		for _, s := range serials {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
				x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now().Add(-time.Minute)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, crl
}

// tlsDialog runs STARTTLS with cert, then MAIL and RCPT to a foreign
// domain, and returns the RCPT reply.
func tlsDialog(t *testing.T, addr string, cert *tls.Certificate) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n')
	conn.Write([]byte("STARTTLS\r\n"))
	if l, _ := r.ReadString('\n'); l != "220 ready for tls\r\n" {
		t.Fatalf("STARTTLS: %q", l)
	}
	conf := &tls.Config{InsecureSkipVerify: true}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	tc := tls.Client(conn, conf)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tr := bufio.NewReader(tc)
	tc.Write([]byte("MAIL FROM:<a@client.example>\r\nRCPT TO:<far@elsewhere.example>\r\nDATA\r\n"))
	tr.ReadString('\n')
	rcpt, _ := tr.ReadString('\n')
	if strings.HasPrefix(rcpt, "250") {
		tr.ReadString('\n')
		tc.Write([]byte("hi\r\n.\r\n"))
		tr.ReadString('\n')
	}
	tc.Write([]byte("QUIT\r\n"))
	tr.ReadString('\n')
	return rcpt
}

func TestTLSClientCertRelay(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	testenv.WriteServerCert(t, filepath.Join(home, "control", "servercert.pem"), testenv.Me)
	caPEM, cert := clientCert(t, "trusted@client.example")
	os.WriteFile(filepath.Join(home, "control", "clientca.pem"), caPEM, 0o644)
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q})

	// Without tlsclients a certificate does not help.
	if got := tlsDialog(t, srv.addr, &cert); got != "553 sorry, that domain isn't in my list of allowed rcpthosts; no valid cert for gatewaying (#5.7.1)\r\n" {
		t.Errorf("without tlsclients: %q", got)
	}
	testenv.WriteControl(t, home, "tlsclients", "other@client.example\n")
	if got := tlsDialog(t, srv.addr, &cert); got != "553 sorry, that domain isn't in my list of allowed rcpthosts; no valid cert for gatewaying: email address not in my list of tlsclients (#5.7.1)\r\n" {
		t.Errorf("not listed: %q", got)
	}
	if got := tlsDialog(t, srv.addr, nil); got != "553 sorry, that domain isn't in my list of allowed rcpthosts; no valid cert for gatewaying (#5.7.1)\r\n" {
		t.Errorf("no certificate: %q", got)
	}
	testenv.WriteControl(t, home, "tlsclients", "Trusted@client.example\n")
	if got := tlsDialog(t, srv.addr, &cert); got != "250 ok\r\n" {
		t.Fatalf("listed certificate: %q", got)
	}
	msgs, _ := srv.captured(t)
	if len(msgs) != 1 || !strings.Contains(msgs[0], " encrypted)\n  (cert trusted@client.example); ") {
		t.Errorf("captured %q", msgs)
	}
}

// TestTLSClientCertRevoked: with control/clientcrl.pem, a listed client
// certificate still relays unless the CRL revokes it; a CRL file that
// cannot be parsed lets no certificate relay.
func TestTLSClientCertRevoked(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	testenv.WriteServerCert(t, filepath.Join(home, "control", "servercert.pem"), testenv.Me)
	caPEM, cert, crl := clientCertCRL(t, "trusted@client.example")
	testenv.WriteControl(t, home, "clientca.pem", string(caPEM))
	testenv.WriteControl(t, home, "tlsclients", "trusted@client.example\n")
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q})

	testenv.WriteControl(t, home, "clientcrl.pem", string(crl(5, 12)))
	if got := tlsDialog(t, srv.addr, &cert); got != "250 ok\r\n" {
		t.Errorf("CRL without the certificate: %q", got)
	}
	testenv.WriteControl(t, home, "clientcrl.pem", string(crl(5, 11)))
	if got := tlsDialog(t, srv.addr, &cert); got != "553 sorry, that domain isn't in my list of allowed rcpthosts; no valid cert for gatewaying: certificate revoked (#5.7.1)\r\n" {
		t.Errorf("revoked certificate: %q", got)
	}
	testenv.WriteControl(t, home, "clientcrl.pem", "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
	if got := tlsDialog(t, srv.addr, &cert); got != "553 sorry, that domain isn't in my list of allowed rcpthosts; no valid cert for gatewaying: unable to get certificate CRL (#5.7.1)\r\n" {
		t.Errorf("broken CRL file: %q", got)
	}
	if msgs, _ := srv.captured(t); len(msgs) != 1 {
		t.Errorf("captured %d messages, want 1", len(msgs))
	}
}

// starttls opens a session at addr and negotiates STARTTLS with conf.
// The caller closes the connection.
func starttls(t *testing.T, addr string, conf *tls.Config) (*tls.Conn, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n')
	conn.Write([]byte("STARTTLS\r\n"))
	if l, _ := r.ReadString('\n'); l != "220 ready for tls\r\n" {
		t.Fatalf("STARTTLS: %q", l)
	}
	tc := tls.Client(conn, conf)
	return tc, tc.Handshake()
}

// TestTLSCiphers: control/tlsserverciphers limits the TLS 1.2 suites,
// TLSCIPHERS (here from a tcprules rule of the standalone listener)
// overrides it, names Go cannot honour are logged and ignored, and TLS
// 1.3 is not affected.
func TestTLSCiphers(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	testenv.WriteServerCert(t, filepath.Join(home, "control", "servercert.pem"), testenv.Me)
	testenv.WriteControl(t, home, "tlsserverciphers", "ECDHE-ECDSA-CHACHA20-POLY1305\nHIGH\n")
	rules := makeRules(t, home, ":allow\n")
	addrs, _, stopListener := startListener(t, home, nil, "-x", rules)
	var opened []*tls.Conn
	dial := func(conf *tls.Config) (*tls.Conn, error) {
		tc, err := starttls(t, addrs[0], conf)
		opened = append(opened, tc)
		return tc, err
	}
	tls12 := func(suites ...uint16) *tls.Config {
		return &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: suites}
	}
	all := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
	tc, err := dial(tls12(all...))
	if err != nil || tc.ConnectionState().CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Errorf("tlsserverciphers: %v, suite %s", err, tls.CipherSuiteName(tc.ConnectionState().CipherSuite))
	}
	if _, err := dial(tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)); err == nil {
		t.Error("a TLS 1.2 client without the configured suite got through")
	}
	tc, err = dial(&tls.Config{InsecureSkipVerify: true})
	if err != nil || tc.ConnectionState().Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3 client: %v", err)
	}

	makeRules(t, home, "127.0.0.1:allow,TLSCIPHERS=\"ECDHE-ECDSA-AES256-GCM-SHA384\"\n")
	tc, err = dial(tls12(all...))
	if err != nil || tc.ConnectionState().CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("TLSCIPHERS: %v, suite %s", err, tls.CipherSuiteName(tc.ConnectionState().CipherSuite))
	}
	// An empty TLSCIPHERS means DEFAULT, not the control file.
	makeRules(t, home, "127.0.0.1:allow,TLSCIPHERS=\"\"\n")
	if _, err := dial(tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)); err != nil {
		t.Errorf("TLSCIPHERS empty: %v", err)
	}
	// The listener's TERM waits for running sessions: end them first.
	for _, c := range opened {
		c.Close()
	}
	if got := stopListener(); !strings.Contains(got, ": TLS ciphers not available in Go, ignored: HIGH\n") {
		t.Errorf("log lacks the ignored cipher names:\n%s", got)
	}
}

// TestStartTLSHandshakeFailure: a client that answers "220 ready for
// tls" with something that is not a TLS handshake gets "454 TLS
// connection failed: ... (#4.3.0)" in clear, and the session ends.
func TestStartTLSHandshakeFailure(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	testenv.WriteServerCert(t, filepath.Join(home, "control", "servercert.pem"), testenv.Me)
	addrs, _, _ := startListener(t, home, nil)
	conn, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n')
	conn.Write([]byte("STARTTLS\r\n"))
	if l, _ := r.ReadString('\n'); l != "220 ready for tls\r\n" {
		t.Fatalf("STARTTLS: %q", l)
	}
	conn.Write([]byte("this is not a TLS client hello\r\nNOOP\r\n"))
	rest, _ := io.ReadAll(r)
	if !strings.HasPrefix(string(rest), "454 TLS connection failed: ") || !strings.HasSuffix(string(rest), " (#4.3.0)\r\n") ||
		strings.Count(string(rest), "\r\n") != 1 {
		t.Errorf("after a broken handshake: %q", rest)
	}
}
