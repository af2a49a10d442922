package smtpd

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"github.com/goqmail/goqmail/internal/ascii"
	"net"
	"os"
	"strings"
	"time"

	"github.com/goqmail/goqmail/control"
)

// tlsAvailable: STARTTLS is offered when control/servercert.pem exists and
// the session is not encrypted yet (patch 0010).
func (s *Session) tlsAvailable() bool {
	_, inTLS := s.conn.(*tls.Conn)
	return !inTLS && statExists(s.cfg.ServerCertPath)
}

func (s *Session) starttlsCommand(arg string) error {
	if _, inTLS := s.conn.(*tls.Conn); inTLS {
		s.log.Event("Unimplemented command")
		s.reply("502 unimplemented (#5.5.1)")
		return nil
	}
	if arg != "" {
		s.reply("501 Syntax error (no parameters allowed) (#5.5.4)")
	} else if err := s.startTLS(false); err != nil {
		return err
	}
	// Whatever the client sent after STARTTLS, before the handshake,
	// is dropped: it could be a command injected in clear.
	s.in.Discard(s.in.Buffered())
	return nil
}

// tlsSetupFailed answers a TLS problem before the handshake with
// "454 TLS what: detail (#4.3.0)"; with SMTPS the session then ends.
func (s *Session) tlsSetupFailed(what string, err error, smtps bool) error {
	line := "454 TLS " + what
	if err != nil {
		line += ": " + err.Error()
	}
	s.log.Event("TLS setup failed")
	s.reply(line + " (#4.3.0)")
	if smtps {
		s.flush()
		return exitSession{1}
	}
	return nil
}

// startTLS runs the server side of the handshake on the connection. With
// smtps (the SMTPS variable, port 465) there is no "220 ready for tls".
func (s *Session) startTLS(smtps bool) error {
	raw, ok := s.conn.(net.Conn)
	if !ok {
		return s.tlsSetupFailed("unable to initialize ctx", nil, smtps)
	}
	cert, err := tls.LoadX509KeyPair(s.cfg.ServerCertPath, s.cfg.ServerCertPath)
	if err != nil {
		return s.tlsSetupFailed("missing certificate", err, smtps)
	}
	ciphers, err := s.cipherString()
	if err != nil {
		return s.dieControl()
	}
	suites, ignored := ParseCipherList(ciphers)
	if len(ignored) > 0 {
		s.log.Event("TLS ciphers not available in Go, ignored: " + Clean(strings.Join(ignored, " ")))
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// TLS 1.2 only: Go's TLS 1.3 suites are not configurable.
		CipherSuites: suites,
	}
	if statExists(s.clientCAPath()) {
		// Vermeulen's patch asks for a client certificate later, by
		// renegotiation, which Go does not offer; asking in the first
		// handshake gives the same result. The certificate is checked
		// only when it matters (tlsVerify), so a bad one never breaks
		// the handshake.
		conf.ClientAuth = tls.RequestClientCert
	}
	if !smtps {
		s.reply("220 ready for tls")
		if err := s.flush(); err != nil {
			return err
		}
	}
	conn := tls.Server(raw, conf)
	raw.SetDeadline(time.Now().Add(s.cfg.Timeout))
	if err := conn.Handshake(); err != nil {
		s.log.Event("TLS connection failed: quitting")
		s.reply("454 TLS connection failed: " + err.Error() + " (#4.3.0)")
		s.flush()
		return exitSession{1}
	}
	raw.SetDeadline(time.Time{})
	s.setStreams(conn)
	state := conn.ConnectionState()
	s.protocol = "ESMTPS (" + tls.CipherSuiteName(state.CipherSuite) + " encrypted)"
	s.dohelo(s.cfg.Env.RemoteHost)
	return nil
}

func (s *Session) clientCAPath() string { return s.cfg.Home + "/control/clientca.pem" }

// tlsNoGateway is the addition patch 0010 makes to the rcpthosts refusal
// of an encrypted session whose client may not relay.
func (s *Session) tlsNoGateway() string {
	if _, inTLS := s.conn.(*tls.Conn); !inTLS || s.isRelay {
		return ""
	}
	if s.tlsVerifyErr != "" {
		return "; no valid cert for gatewaying: " + s.tlsVerifyErr
	}
	return "; no valid cert for gatewaying"
}

// oidEmailAddress is PKCS #9 emailAddress, where the TLS patch looks for
// the client's address in the certificate subject.
var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// tlsVerify lets a client relay whose certificate verifies against
// control/clientca.pem and carries an emailAddress listed in
// control/tlsclients (patch 0010). It runs once per session, when
// rcpthosts would refuse a recipient.
func (s *Session) tlsVerify() (bool, error) {
	tc, inTLS := s.conn.(*tls.Conn)
	if !inTLS || s.isRelay || s.tlsVerified {
		return false, nil
	}
	s.tlsVerified = true
	files, err := control.Open(s.cfg.Home)
	if err != nil {
		return false, err
	}
	clients, ok, err := files.List("tlsclients")
	if err != nil || !ok {
		return false, err
	}
	pemData, err := os.ReadFile(s.clientCAPath())
	if err != nil {
		return false, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return false, nil
	}
	peers := tc.ConnectionState().PeerCertificates
	if len(peers) == 0 {
		return false, nil
	}
	inter := x509.NewCertPool()
	for _, c := range peers[1:] {
		inter.AddCert(c)
	}
	chains, err := peers[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		s.tlsVerifyErr = err.Error()
		return false, nil
	}
	if reason := s.revocationProblem(chains); reason != "" {
		s.tlsVerifyErr = reason
		return false, nil
	}
	var email string
	for _, n := range peers[0].Subject.Names {
		if n.Type.Equal(oidEmailAddress) {
			email, _ = n.Value.(string)
			break
		}
	}
	switch {
	case email == "":
		s.tlsVerifyErr = "contains no email address"
		return false, nil
	case !containsFold(clients, email):
		s.tlsVerifyErr = "email address not in my list of tlsclients"
		return false, nil
	}
	s.protocol += "\n  (cert " + email + ")"
	s.relayClient, s.isRelay = "", true
	s.setEnv("RELAYCLIENT", "")
	return true, nil
}

// revocationProblem checks the verified chains against
// control/clientcrl.pem when it exists: one chain must pass. The answer
// is the reason for refusing, or "".
func (s *Session) revocationProblem(chains [][]*x509.Certificate) string {
	crls, err := LoadCRLs(s.cfg.Home + "/control/clientcrl.pem")
	if errors.Is(err, errNoCRLCheck) {
		return ""
	}
	if err != nil {
		s.log.Event("Unable to load clientcrl.pem: " + Clean(err.Error()))
		return "unable to get certificate CRL"
	}
	reason := "unable to get certificate CRL"
	for i, chain := range chains {
		r := CheckRevocation(chain, crls, s.Now())
		if r == "" {
			return ""
		}
		if i == 0 {
			reason = r
		}
	}
	return reason
}

// containsFold is constmap's lookup: ASCII case-insensitive.
func containsFold(list []string, s string) bool {
	for _, l := range list {
		if ascii.EqualFold(l, s) {
			return true
		}
	}
	return false
}
