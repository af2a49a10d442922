package smtpd

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/goqmail/goqmail/control"
)

// opensslCiphers maps the OpenSSL names of the TLS 1.2 cipher suites Go
// implements and considers secure to Go's identifiers. tlsserverciphers
// and TLSCIPHERS are OpenSSL cipher strings; only these names can be
// honoured. The RSA key exchange suites (AES128-SHA, ...), 3DES and RC4
// are left out: Go lists them as insecure.
var opensslCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// defaultCiphers is what DEFAULT stands for in a cipher string: every
// suite of the table.
var defaultCiphers = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// maxCipherString bounds the cipher string that is interpreted.
const maxCipherString = 4096

// ParseCipherList reads an OpenSSL cipher string (elements separated by
// ':', ',' or spaces) as far as Go can follow it: a known suite name adds
// it, "!NAME" removes it for good, "-NAME" removes it, "+NAME" (a move to
// the end) changes nothing since Go orders suites itself, and DEFAULT
// adds the default suites. Everything else (HIGH, aRSA, @STRENGTH, TLS 1.3
// suite names, ...) is returned in ignored. When no element was
// understood, suites is nil: Go's defaults apply.
func ParseCipherList(list string) (suites []uint16, ignored []string) {
	if len(list) > maxCipherString {
		list = list[:maxCipherString]
	}
	banned := map[uint16]bool{}
	understood := false
	add := func(id uint16) {
		if !banned[id] && !containsSuite(suites, id) {
			suites = append(suites, id)
		}
	}
	remove := func(id uint16) {
		kept := suites[:0]
		for _, s := range suites {
			if s != id {
				kept = append(kept, s)
			}
		}
		suites = kept
	}
	fields := strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' || r == '\t' })
	for _, f := range fields {
		op, name := byte(0), f
		if f[0] == '!' || f[0] == '-' || f[0] == '+' {
			op, name = f[0], f[1:]
		}
		if op == 0 && name == "DEFAULT" {
			understood = true
			for _, id := range defaultCiphers {
				add(id)
			}
			continue
		}
		id, ok := opensslCiphers[name]
		if !ok {
			ignored = append(ignored, f)
			continue
		}
		understood = true
		switch op {
		case '!':
			banned[id] = true
			remove(id)
		case '-':
			remove(id)
		case '+':
		default:
			add(id)
		}
	}
	if !understood {
		return nil, ignored
	}
	if suites == nil {
		// Everything was removed: TLS 1.2 is then impossible, as the
		// string asks; a nil list would mean Go's defaults instead.
		suites = []uint16{}
	}
	return suites, ignored
}

func containsSuite(list []uint16, id uint16) bool {
	for _, s := range list {
		if s == id {
			return true
		}
	}
	return false
}

// cipherString is the server's cipher string as patch 0010 finds it:
// $TLSCIPHERS when set, else control/tlsserverciphers with its lines
// joined by ':'; "" means DEFAULT.
func (s *Session) cipherString() (string, error) {
	if s.cfg.Env.HasTLSCiphers {
		return s.cfg.Env.TLSCiphers, nil
	}
	files, err := control.Open(s.cfg.Home)
	if err != nil {
		return "", err
	}
	lines, ok, err := files.List("tlsserverciphers")
	if err != nil || !ok {
		return "", err
	}
	return strings.Join(lines, ":"), nil
}

// maxCRLFile bounds clientcrl.pem; CRLs of a busy CA can be large, but
// not without limit.
const maxCRLFile = 16 << 20

// errNoCRLCheck: clientcrl.pem does not exist, revocation is not checked.
var errNoCRLCheck = errors.New("no clientcrl.pem")

// LoadCRLs reads the PEM "X509 CRL" blocks of clientcrl.pem. A missing
// file gives errNoCRLCheck. Unlike OpenSSL, which then silently skips
// the revocation check, a file that exists but cannot be read or parsed
// is an error: the check fails closed.
func LoadCRLs(path string) ([]*x509.RevocationList, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoCRLCheck
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCRLFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCRLFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxCRLFile)
	}
	return ParseCRLs(data)
}

// ParseCRLs decodes every "X509 CRL" PEM block of data; other blocks are
// skipped. No CRL at all is an error.
func ParseCRLs(data []byte) ([]*x509.RevocationList, error) {
	var crls []*x509.RevocationList
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, err
		}
		crls = append(crls, crl)
	}
	if len(crls) == 0 {
		return nil, errors.New("no CRL found")
	}
	return crls, nil
}

// CheckRevocation checks every certificate of a verified chain (leaf
// first, trust anchor last) against the CRLs, as OpenSSL does with
// X509_V_FLAG_CRL_CHECK_ALL: each certificate but the anchor needs a
// current CRL signed by its issuer, and must not be listed in it. The
// result is OpenSSL's text for the failure, or "" when the chain passes.
func CheckRevocation(chain []*x509.Certificate, crls []*x509.RevocationList, now time.Time) string {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		var crl *x509.RevocationList
		for _, c := range crls {
			if bytes.Equal(c.RawIssuer, cert.RawIssuer) && c.CheckSignatureFrom(issuer) == nil {
				crl = c
				break
			}
		}
		switch {
		case crl == nil:
			return "unable to get certificate CRL"
		case now.Before(crl.ThisUpdate):
			return "CRL is not yet valid"
		case !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate):
			return "CRL has expired"
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				return "certificate revoked"
			}
		}
	}
	return ""
}
