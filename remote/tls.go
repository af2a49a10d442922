package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/goqmail/goqmail/control"
)

// tlsPolicy is what patch 0010 decides for one mail exchanger.
type tlsPolicy struct {
	// never: notlshosts/FQDN exists, or tlshosts/exhaustivelist exists
	// without tlshosts/FQDN.pem.
	never bool
	// caFile is "control/tlshosts/FQDN.pem" when it exists: TLS is then
	// required and the server certificate must verify against it and
	// name FQDN.
	caFile string
	// caPath is caFile under the qmail home.
	caPath string
}

// safeFileName reports whether name, which comes from DNS or the
// command line, can be used as a file name under control/ without
// leaving the directory.
func safeFileName(name string) bool {
	if name == "" || name[0] == '.' || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// decideTLS looks up the tlshosts/notlshosts files for the exchanger
// fqdn (empty for address literals: then TLS is only opportunistic).
func decideTLS(ctl *control.Files, fqdn string) (tlsPolicy, error) {
	if !safeFileName(fqdn) {
		return tlsPolicy{}, nil
	}
	name := "tlshosts/" + fqdn + ".pem"
	ok, err := exists(ctl.Path(name))
	if err != nil {
		return tlsPolicy{}, fmt.Errorf("control/%s: %w", name, err)
	}
	if ok {
		return tlsPolicy{caFile: "control/" + name, caPath: ctl.Path(name)}, nil
	}
	for _, n := range []string{"tlshosts/exhaustivelist", "notlshosts/" + fqdn} {
		ok, err := exists(ctl.Path(n))
		if err != nil {
			return tlsPolicy{}, fmt.Errorf("control/%s: %w", n, err)
		}
		if ok {
			return tlsPolicy{never: true}, nil
		}
	}
	return tlsPolicy{}, nil
}

// clientTLSConfig is the crypto/tls configuration: TLS 1.2 or newer,
// control/clientcert.pem (certificate chain and key in one file)
// presented when it exists. The handshake never fails for an unverified
// certificate: when TLS is required, verifyServer checks it afterwards so
// that the report can say what was wrong, as patch 0010 does.
func clientTLSConfig(ctl *control.Files, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified by verifyServer when required
	}
	if safeFileName(serverName) {
		cfg.ServerName = serverName
	}
	certPath := ctl.Path("clientcert.pem")
	if ok, err := exists(certPath); err != nil {
		return nil, fmt.Errorf("control/clientcert.pem: %w", err)
	} else if ok {
		cert, err := tls.LoadX509KeyPair(certPath, certPath)
		if err != nil {
			return nil, fmt.Errorf("control/clientcert.pem: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// verifyServer checks the peer's certificate chain against the CAs in
// policy.caPath and its name against fqdn (patch 0010's rules: the
// subjectAltName DNS entries when there are any, else the common name;
// "*.domain" matches one label). It returns the report text (without
// the "; connected to" tail) of the first problem, or "".
func verifyServer(state tls.ConnectionState, policy tlsPolicy, fqdn string) string {
	pem, err := os.ReadFile(policy.caPath)
	if err != nil {
		return fmt.Sprintf("ZTLS unable to load %s: %v", policy.caFile, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Sprintf("ZTLS unable to load %s: no certificate found", policy.caFile)
	}
	if len(state.PeerCertificates) == 0 {
		return "ZTLS unable to verify server " + fqdn + ": no certificate provided"
	}
	leaf := state.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return fmt.Sprintf("ZTLS unable to verify server with %s: %v", policy.caFile, err)
	}
	if len(leaf.DNSNames) > 0 {
		for _, n := range leaf.DNSNames {
			if matchPartner(n, fqdn) {
				return ""
			}
		}
		// Patch 0010 accepted any certificate with DNS names here, even
		// when none matched; that defeats the point of tlshosts/.
		return "ZTLS unable to verify server " + fqdn + ": received certificate for " + outsafe(strings.Join(leaf.DNSNames, ","))
	}
	cn := leaf.Subject.CommonName
	if cn == "" {
		return "ZTLS unable to verify server " + fqdn + ": certificate contains no valid commonName"
	}
	if !matchPartner(cn, fqdn) {
		return "ZTLS unable to verify server " + fqdn + ": received certificate for " + outsafe(cn)
	}
	return ""
}

// matchPartner compares a certificate name with the exchanger's name,
// ignoring ASCII case; "*.example.com" matches any one label before
// ".example.com".
func matchPartner(certName, fqdn string) bool {
	if strings.EqualFold(certName, fqdn) {
		return true
	}
	if rest, ok := strings.CutPrefix(certName, "*"); ok {
		if dot := strings.IndexByte(fqdn, '.'); dot >= 0 {
			return strings.EqualFold(rest, fqdn[dot:])
		}
	}
	return false
}
