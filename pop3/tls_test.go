package pop3

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// popupOverPipe runs Popup.Serve on one end of a net.Pipe and returns the
// other end.
func popupOverPipe(t *testing.T, p *Popup) (net.Conn, chan error) {
	server, client := net.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- p.Serve(server)
		server.Close()
	}()
	t.Cleanup(func() { client.Close() })
	return client, done
}

// expect reads one reply line and compares it.
func expect(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	got, err := r.ReadString('\n')
	if err != nil || got != want+"\r\n" {
		t.Fatalf("got %q (%v), want %q", got, err, want)
	}
}

func TestPopupSTLS(t *testing.T) {
	cert := filepath.Join(t.TempDir(), "servercert.pem")
	testenv.WriteServerCert(t, cert, "pop.example")
	f := &fakeLogin{say: "+OK \r\n"}
	p := testPopup(f)
	p.CertPath = cert
	client, done := popupOverPipe(t, p)
	r := bufio.NewReader(client)
	expect(t, r, "+OK <77.1700000000@pop.example>")
	io.WriteString(client, "USER before\r\nCAPA\r\n")
	expect(t, r, "+OK ")
	for _, l := range []string{"+OK capability list follows", "TOP", "UIDL", "USER", "STLS", "."} {
		expect(t, r, l)
	}
	io.WriteString(client, "STLS now\r\nSTLS\r\n")
	expect(t, r, "-ERR syntax error")
	expect(t, r, "+OK begin TLS negotiation")
	tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true})
	tr := bufio.NewReader(tc)
	// USER given before TLS is forgotten.
	io.WriteString(tc, "PASS early\r\nCAPA\r\nSTLS\r\nUSER bob\r\nPASS pw\r\n")
	expect(t, tr, "-ERR USER first")
	for _, l := range []string{"+OK capability list follows", "TOP", "UIDL", "USER", "."} {
		expect(t, tr, l)
	}
	expect(t, tr, "-ERR authorization first")
	expect(t, tr, "+OK ")
	expect(t, tr, "+OK ") // said by the "child" through the TLS connection
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if len(f.calls) != 1 || !strings.HasPrefix(f.calls[0], "bob\x00pw\x00") {
		t.Errorf("logins %q", f.calls)
	}
}

func TestPopupBrokenCertificate(t *testing.T) {
	cert := filepath.Join(t.TempDir(), "servercert.pem")
	os.WriteFile(cert, []byte("not a certificate\n"), 0o600)
	p := testPopup(&fakeLogin{})
	p.CertPath = cert
	client, _ := popupOverPipe(t, p)
	r := bufio.NewReader(client)
	expect(t, r, "+OK <77.1700000000@pop.example>")
	io.WriteString(client, "STLS\r\nQUIT\r\n")
	expect(t, r, "-ERR TLS unavailable: unable to load certificate")
	expect(t, r, "+OK ")
}
