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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

// clientCert makes a CA and a client certificate signed by it whose
// subject carries emailAddress.
func clientCert(t *testing.T, email string) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
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
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
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
	writeServerCert(t, filepath.Join(home, "control", "servercert.pem"))
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
