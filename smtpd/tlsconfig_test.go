package smtpd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCipherList(t *testing.T) {
	const (
		ecdsa128 = tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
		rsa128   = tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
		rsa256   = tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
		chacha   = tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
	)
	withoutRSA128 := []uint16{}
	for _, id := range defaultCiphers {
		if id != rsa128 {
			withoutRSA128 = append(withoutRSA128, id)
		}
	}
	tests := []struct {
		list    string
		suites  []uint16
		ignored []string
	}{
		{"", nil, nil},
		{"DEFAULT", defaultCiphers, nil},
		{"DEFAULT:DEFAULT", defaultCiphers, nil},
		{"HIGH:!aNULL:!MD5", nil, []string{"HIGH", "!aNULL", "!MD5"}},
		{"ECDHE-RSA-AES128-GCM-SHA256", []uint16{rsa128}, nil},
		{"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384,ECDHE-RSA-CHACHA20-POLY1305 ECDHE-RSA-AES128-GCM-SHA256",
			[]uint16{rsa128, rsa256, chacha}, nil},
		{"DEFAULT:!ECDHE-RSA-AES128-GCM-SHA256", withoutRSA128, nil},
		{"!ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256", []uint16{ecdsa128}, nil},
		{"ECDHE-RSA-AES128-GCM-SHA256:-ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256", []uint16{rsa128}, nil},
		{"+ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305", []uint16{chacha}, nil},
		{"!ECDHE-RSA-AES128-GCM-SHA256", []uint16{}, nil},
		{"TLS_AES_128_GCM_SHA256:RC4-SHA:AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:@STRENGTH", []uint16{rsa128},
			[]string{"TLS_AES_128_GCM_SHA256", "RC4-SHA", "AES128-SHA", "@STRENGTH"}},
	}
	for _, tt := range tests {
		suites, ignored := ParseCipherList(tt.list)
		if !reflect.DeepEqual(suites, tt.suites) || !reflect.DeepEqual(ignored, tt.ignored) {
			t.Errorf("ParseCipherList(%q) = %v, %q; want %v, %q", tt.list, suites, ignored, tt.suites, tt.ignored)
		}
	}
	// Every name of the table is a suite Go supports and deems secure.
	secure := map[uint16]bool{}
	for _, cs := range tls.CipherSuites() {
		secure[cs.ID] = true
	}
	for name, id := range opensslCiphers {
		if !secure[id] {
			t.Errorf("%s maps to %s, not one of Go's secure suites", name, tls.CipherSuiteName(id))
		}
	}
}

func FuzzParseCipherList(f *testing.F) {
	f.Add("DEFAULT:!ECDHE-RSA-AES128-GCM-SHA256")
	f.Add("HIGH:!aNULL, +AES128-SHA -AES256-SHA")
	f.Add("!:-:+::,")
	f.Fuzz(func(t *testing.T, list string) {
		suites, _ := ParseCipherList(list)
		seen := map[uint16]bool{}
		for _, id := range suites {
			if seen[id] {
				t.Fatalf("suite %x twice", id)
			}
			seen[id] = true
		}
	})
}

func TestCustomReply(t *testing.T) {
	tests := []struct {
		text, digits string
		want         string
		ok           bool
	}{
		{"550 no such user\n", "45", "550 no such user", true},
		{"450 4.2.1 busy\r\nmore\n", "45", "450 4.2.1 busy", true},
		{"554", "45", "554", true},
		{"421 bye", "4", "421 bye", true},
		{"550 permanent", "4", "", false},
		{"250 ok\n", "45", "", false},
		{"", "45", "", false},
		{"55", "45", "", false},
		{"5x0 text", "45", "", false},
		{"550-continued\n", "45", "", false},
		{"550 tab\there", "45", "", false},
		{"550 \xff", "45", "", false},
		{"\n550 second line", "45", "", false},
	}
	for _, tt := range tests {
		got, ok := customReply(tt.text, tt.digits)
		if got != tt.want || ok != tt.ok {
			t.Errorf("customReply(%q, %q) = %q, %v; want %q, %v", tt.text, tt.digits, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzCustomReply(f *testing.F) {
	f.Add("550 5.1.1 unknown\r\n")
	f.Add("421\n")
	f.Fuzz(func(t *testing.T, text string) {
		line, ok := customReply(text, "45")
		if !ok {
			return
		}
		if strings.ContainsAny(line, "\r\n") || len(line) < 3 || (line[0] != '4' && line[0] != '5') {
			t.Fatalf("accepted %q from %q", line, text)
		}
	})
}

// testCA is a CA key and certificate for the CRL tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) issue(t *testing.T, serial int64) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// crlPEM is a CRL of ca revoking serials, valid from thisUpdate to
// nextUpdate.
func (ca *testCA) crlPEM(t *testing.T, thisUpdate, nextUpdate time.Time, serials ...int64) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: thisUpdate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func TestCheckRevocation(t *testing.T) {
	now := time.Now()
	ca, other := newTestCA(t, "ca"), newTestCA(t, "other")
	good, revoked := ca.issue(t, 100), ca.issue(t, 101)
	current := func(c *testCA, serials ...int64) []byte {
		return c.crlPEM(t, now.Add(-time.Minute), now.Add(time.Hour), serials...)
	}
	// A CRL with ca's name but signed by another key must not count.
	forged := &testCA{cert: ca.cert, key: other.key}
	tests := []struct {
		name string
		pem  []byte
		leaf *x509.Certificate
		want string
	}{
		{"not revoked", current(ca, 101), good, ""},
		{"revoked", current(ca, 101), revoked, "certificate revoked"},
		{"other CA's CRL only", current(other, 7), good, "unable to get certificate CRL"},
		{"both CAs", append(current(other), current(ca, 101)...), revoked, "certificate revoked"},
		{"expired", ca.crlPEM(t, now.Add(-2*time.Hour), now.Add(-time.Hour)), good, "CRL has expired"},
		{"not yet valid", ca.crlPEM(t, now.Add(time.Hour), now.Add(2*time.Hour)), good, "CRL is not yet valid"},
		{"forged signature", current(forged), good, "unable to get certificate CRL"},
	}
	for _, tt := range tests {
		crls, err := ParseCRLs(tt.pem)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := CheckRevocation([]*x509.Certificate{tt.leaf, ca.cert}, crls, now); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := ParseCRLs([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")); err == nil {
		t.Error("a broken CRL parsed")
	}
	if _, err := ParseCRLs(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})); err == nil {
		t.Error("a file without CRLs parsed")
	}
}

func FuzzParseCRLs(f *testing.F) {
	f.Add([]byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"))
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, data []byte) {
		crls, err := ParseCRLs(data)
		if err == nil && len(crls) == 0 {
			t.Fatal("no error and no CRL")
		}
	})
}
