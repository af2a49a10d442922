package inbound

import "strings"

// Environ is the connection's tcp-environ(5) and patch variables.
type Environ struct {
	RemoteIP      string // TCPREMOTEIP, "unknown" when unset
	RemoteHost    string // TCPREMOTEHOST, "unknown" when unset
	RemoteInfo    string // TCPREMOTEINFO
	HasRemoteInfo bool
	Local         string // TCPLOCALHOST, else TCPLOCALIP, else "unknown"
	RelayClient   string // RELAYCLIENT: appended to each recipient
	IsRelayClient bool   // RELAYCLIENT is set, even empty
	SMTPAuth      string // SMTPAUTH, lowercased
	HasSMTPAuth   bool
	RcptCheck     string // RCPTCHECK: program run for each recipient
	SMTPS         bool   // SMTPS: TLS from the first byte
	TLSCiphers    string // TLSCIPHERS: overrides control/tlsserverciphers
	HasTLSCiphers bool   // TLSCIPHERS is set, even empty (then DEFAULT)
}

// LookupEnv is os.LookupEnv's signature: the source of the environment.
type LookupEnv func(string) (string, bool)

// ReadEnviron reads the connection variables with qmail-smtpd's defaults.
func ReadEnviron(lookup LookupEnv) Environ {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok {
			return v
		}
		return def
	}
	var e Environ
	e.RemoteIP = get("TCPREMOTEIP", "unknown")
	e.RemoteHost = get("TCPREMOTEHOST", "unknown")
	e.RemoteInfo, e.HasRemoteInfo = lookup("TCPREMOTEINFO")
	if v, ok := lookup("TCPLOCALHOST"); ok {
		e.Local = v
	} else {
		e.Local = get("TCPLOCALIP", "unknown")
	}
	e.RelayClient, e.IsRelayClient = lookup("RELAYCLIENT")
	e.SMTPAuth, e.HasSMTPAuth = lookup("SMTPAUTH")
	e.SMTPAuth = strings.ToLower(e.SMTPAuth)
	e.RcptCheck = get("RCPTCHECK", "")
	_, e.SMTPS = lookup("SMTPS")
	e.TLSCiphers, e.HasTLSCiphers = lookup("TLSCIPHERS")
	return e
}
