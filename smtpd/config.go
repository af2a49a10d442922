package smtpd

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/control/cdb"
)

// Config is what one SMTP session runs with: the control files, read
// afresh for every connection as qmail-smtpd does, and the tcp-environ
// variables describing the connection.
type Config struct {
	Home string

	Greeting    string // first line of smtpgreeting, else me
	LocalIPHost string // localiphost, else me; "" disables the rewrite
	Timeout     time.Duration
	DataBytes   int64 // 0 = unlimited
	BadMailFrom BadMailFrom
	RcptHosts   *RcptHosts // nil when control/rcpthosts is missing: open relay

	// IsLocalIP tells whether an address is one of this host's (ipme).
	IsLocalIP func(netip.Addr) bool

	Env Environ

	// CheckPassword is the checkpassword command (argv[1..] of
	// qmail-smtpd); empty means AUTH is unavailable.
	CheckPassword []string

	// ServerCertPath is control/servercert.pem.
	ServerCertPath string
}

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

// ErrNoGreeting is returned by LoadConfig when neither smtpgreeting nor me
// exists: qmail-smtpd refuses to run ("unable to read controls").
var ErrNoGreeting = errors.New("control/smtpgreeting and control/me are both missing")

// LoadConfig reads the control files of home the way qmail-smtpd's setup
// does, and the environment through lookup. Any error means qmail's
// "421 unable to read controls (#4.3.0)".
func LoadConfig(home string, lookup LookupEnv) (*Config, error) {
	files, err := control.Open(home)
	if err != nil {
		return nil, err
	}
	cfg := &Config{Home: home, IsLocalIP: isLocalIP, ServerCertPath: files.Path("servercert.pem")}
	greeting, ok, err := files.Line("smtpgreeting")
	if err != nil {
		return nil, err
	}
	if !ok {
		me, meOK := files.Me()
		if !meOK {
			return nil, ErrNoGreeting
		}
		greeting = me
	}
	cfg.Greeting = greeting
	if cfg.LocalIPHost, err = files.LineDefault("localiphost", true, ""); err != nil {
		return nil, err
	}
	timeout, err := files.Int("timeoutsmtpd", 1200)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 1
	}
	cfg.Timeout = time.Duration(timeout) * time.Second
	if cfg.RcptHosts, err = LoadRcptHosts(files); err != nil {
		return nil, err
	}
	bmf, ok, err := files.List("badmailfrom")
	if err != nil {
		return nil, err
	}
	if ok {
		cfg.BadMailFrom = NewBadMailFrom(append([]string{}, bmf...))
		if cfg.BadMailFrom == nil {
			cfg.BadMailFrom = BadMailFrom{}
		}
	}
	databytes, err := files.Int("databytes", 0)
	if err != nil {
		return nil, err
	}
	cfg.DataBytes = int64(databytes)
	if v, ok := lookup("DATABYTES"); ok {
		// qmail scans leading digits and takes 0 when there are none.
		n, _ := control.ScanUlong(v)
		cfg.DataBytes = int64(n)
	}
	cfg.Env = ReadEnviron(lookup)
	return cfg, nil
}

// RcptHosts is control/rcpthosts plus control/morercpthosts.cdb: the
// domains this host accepts mail for from clients that may not relay.
type RcptHosts struct {
	hosts map[string]bool
	more  *cdb.Reader // nil when morercpthosts.cdb is missing
}

// LoadRcptHosts reads rcpthosts and opens morercpthosts.cdb. It returns
// nil, nil when rcpthosts is missing: then every domain is allowed, as in
// qmail (morercpthosts is consulted only when rcpthosts exists).
func LoadRcptHosts(files *control.Files) (*RcptHosts, error) {
	lines, ok, err := files.List("rcpthosts")
	if err != nil || !ok {
		return nil, err
	}
	rh := &RcptHosts{hosts: make(map[string]bool, len(lines))}
	for _, l := range lines {
		rh.hosts[strings.ToLower(l)] = true
	}
	more, err := cdb.Open(files.Path("morercpthosts.cdb"))
	switch {
	case err == nil:
		rh.more = more
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("control/morercpthosts.cdb: %w", err)
	}
	return rh, nil
}

// Close releases morercpthosts.cdb.
func (rh *RcptHosts) Close() error {
	if rh == nil || rh.more == nil {
		return nil
	}
	return rh.more.Close()
}

// Allowed is rcpthosts.c's test: an address without '@' is allowed;
// otherwise its domain, lowercased, must be listed whole or by one of its
// ".suffix" forms, in rcpthosts or else in morercpthosts.cdb.
func (rh *RcptHosts) Allowed(addr string) (bool, error) {
	if rh == nil {
		return true, nil
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return true, nil
	}
	host := strings.ToLower(addr[at+1:])
	keys := domainKeys(host)
	for _, k := range keys {
		if rh.hosts[k] {
			return true, nil
		}
	}
	if rh.more != nil {
		for _, k := range keys {
			_, ok, err := rh.more.Get([]byte(k))
			if err != nil {
				return false, fmt.Errorf("control/morercpthosts.cdb: %w", err)
			}
			if ok {
				return true, nil
			}
		}
	}
	return false, nil
}

// domainKeys lists the lookup keys of a host: the host itself, then every
// suffix that starts at a '.'.
func domainKeys(host string) []string {
	keys := []string{host}
	for j := 1; j < len(host); j++ {
		if host[j] == '.' {
			keys = append(keys, host[j:])
		}
	}
	return keys
}

// isLocalIP is ipme_is: 0.0.0.0 or an IPv4 address of an interface.
func isLocalIP(ip netip.Addr) bool {
	if ip == netip.IPv4Unspecified() {
		return true
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if got, ok := netip.AddrFromSlice(n.IP); ok && got.Unmap() == ip {
					return true
				}
			}
		}
	}
	return false
}

// statExists reports whether a path exists (servercert.pem enables TLS).
func statExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
