package remote

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/goqmail/goqmail/internal/testdns"
)

// ---- qmail-remote's reports ----

// lastReport is the message report: the last of the reports.
func lastReport(reports []string) string { return reports[len(reports)-1] }

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
	return testdns.StartFake(t, handler, true)
}
