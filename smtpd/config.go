package smtpd

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/inbound"
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

// Environ is the connection's tcp-environ(5) and patch variables. It
// lives in package inbound, which qmail-qmtpd shares without linking
// smtpd's TLS.
type Environ = inbound.Environ

// LookupEnv is os.LookupEnv's signature: the source of the environment.
type LookupEnv = inbound.LookupEnv

// ReadEnviron reads the connection variables with qmail-smtpd's defaults.
func ReadEnviron(lookup LookupEnv) Environ { return inbound.ReadEnviron(lookup) }

// ErrNoGreeting is returned by LoadConfig when neither smtpgreeting nor me
// exists: qmail-smtpd refuses to run ("unable to read controls").
var ErrNoGreeting = errors.New("control/smtpgreeting and control/me are both missing")

// LoadConfig reads the control files of home the way qmail-smtpd's setup
// does, and the environment through lookup. Any error means qmail's
// "421 unable to read controls (#4.3.0)".
func LoadConfig(home string, lookup LookupEnv) (*Config, error) {
	cfg, err := readControls(home)
	if err != nil {
		return nil, err
	}
	cfg.applyEnv(lookup)
	return cfg, nil
}

// controlNames are the control files readControls reads.
var controlNames = []string{"me", "smtpgreeting", "localiphost", "timeoutsmtpd",
	"rcpthosts", "morercpthosts.cdb", "badmailfrom", "databytes"}

// readControls is the part of LoadConfig that depends on the control
// files only.
func readControls(home string) (*Config, error) {
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
	// Last: nothing after it may fail, or the cdb would be left open.
	if cfg.RcptHosts, err = LoadRcptHosts(files); err != nil {
		return nil, err
	}
	return cfg, nil
}

// applyEnv completes a Config from the connection's environment.
func (cfg *Config) applyEnv(lookup LookupEnv) {
	if v, ok := lookup("DATABYTES"); ok {
		// qmail scans leading digits and takes 0 when there are none.
		n, _ := control.ScanUlong(v)
		cfg.DataBytes = int64(n)
	}
	cfg.Env = ReadEnviron(lookup)
}

// ConfigCache gives the standalone listener's sessions their Config with
// the control files' part read once and shared until control/ changes
// (control.Watch), where qmail-smtpd reads them for every connection: a
// change still applies from the next connection on. Files that cannot
// be watched (symbolic links, hard links) are read for every connection.
type ConfigCache struct {
	home      string
	mu        sync.Mutex
	watch     *control.Watch
	watchable bool
	cur       *sharedControls // nil: read them again
}

// sharedControls is the control files' part of the sessions' Config,
// with the number of its users: the cache while it is current, and each
// session. The last to let go closes morercpthosts.cdb.
type sharedControls struct {
	cfg  Config
	refs atomic.Int64
}

func (sc *sharedControls) release() {
	if sc.refs.Add(-1) == 0 {
		sc.cfg.RcptHosts.Close()
	}
}

// NewConfigCache makes the cache for home; Close releases it.
func NewConfigCache(home string) *ConfigCache {
	return &ConfigCache{home: home, watch: control.NewWatch(home, controlNames...)}
}

// Config is LoadConfig for one session; release, called once the
// session is over, lets go of what it shares.
func (c *ConfigCache) Config(lookup LookupEnv) (cfg *Config, release func(), err error) {
	c.mu.Lock()
	if c.watch.Changed() {
		if c.cur != nil {
			c.cur.release()
			c.cur = nil
		}
		c.watchable = c.watch.Reset()
	}
	if c.watchable && c.cur == nil {
		base, err := readControls(c.home)
		if err != nil {
			c.mu.Unlock()
			return nil, nil, err
		}
		c.cur = &sharedControls{cfg: *base}
		c.cur.refs.Store(1)
	}
	shared := c.cur
	if shared != nil {
		shared.refs.Add(1)
	}
	c.mu.Unlock()
	if shared == nil {
		cfg, err := LoadConfig(c.home, lookup)
		if err != nil {
			return nil, nil, err
		}
		return cfg, func() { cfg.RcptHosts.Close() }, nil
	}
	own := shared.cfg
	own.applyEnv(lookup)
	return &own, shared.release, nil
}

// Close lets go of the cache's share and stops watching.
func (c *ConfigCache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		c.cur.release()
		c.cur = nil
	}
	return c.watch.Close()
}

// RcptHosts is control/rcpthosts plus control/morercpthosts.cdb: the
// domains this host accepts mail for from clients that may not relay
// (inbound.RcptHosts).
type RcptHosts = inbound.RcptHosts

// LoadRcptHosts reads rcpthosts and opens morercpthosts.cdb. It returns
// nil, nil when rcpthosts is missing: then every domain is allowed.
func LoadRcptHosts(files *control.Files) (*RcptHosts, error) {
	return inbound.LoadRcptHosts(files)
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
