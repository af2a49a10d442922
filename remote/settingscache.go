package remote

import (
	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/dns"
	"github.com/goqmail/goqmail/internal/fsutil"
)

// settingsFiles are the control files readSettings and the resolver's
// configuration read.
var settingsFiles = []string{"me", "timeoutremote", "timeoutconnect", "helohost",
	"smtproutes", "authsenders", "ipv6", "dnsservers"}

// SettingsCache keeps a worker's settings between deliveries, where
// qmail-remote reads its control files and /etc/resolv.conf for every
// one: the control files are read again when anything in control/
// changes (control.Watch), the resolver's configuration also when
// /etc/resolv.conf is another file or has changed (fsutil.Stamp). So a
// change applies from the next delivery on, as before. The per-host
// TLS files (tlshosts/, notlshosts/, clientcert.pem) are still looked
// up for every connection. It serves one delivery at a time.
type SettingsCache struct {
	watch     *control.Watch
	watchable bool
	cur       *settings // nil: read them again

	resolv     dns.Config
	resolvOK   bool
	resolvFrom fsutil.Stamp // of ResolvConf when resolv was read
}

// NewSettingsCache makes the cache for the control files of home.
func NewSettingsCache(home string) *SettingsCache {
	return &SettingsCache{watch: control.NewWatch(home, settingsFiles...)}
}

// Close stops watching.
func (c *SettingsCache) Close() error { return c.watch.Close() }

// settings returns the control settings of home: the kept ones while
// nothing changed.
func (c *SettingsCache) settings(home string) (*settings, error) {
	if c.watch.Changed() {
		c.cur, c.resolvOK = nil, false
		c.watchable = c.watch.Reset()
	}
	if c.cur != nil {
		return c.cur, nil
	}
	s, err := readSettings(home)
	if err != nil || !c.watchable {
		return s, err
	}
	c.cur = s
	return s, nil
}

// dnsConfig is dns.LoadConfig for cfg (which settings returned), kept
// while control/ and resolvConf are unchanged.
func (c *SettingsCache) dnsConfig(cfg *settings, resolvConf string) (dns.Config, error) {
	stamp, stampErr := fsutil.StampOf(resolvConf)
	if c.resolvOK && cfg == c.cur && stampErr == nil && stamp == c.resolvFrom {
		return c.resolv, nil
	}
	dcfg, err := dns.LoadConfig(cfg.ctl, resolvConf)
	if err != nil {
		return dns.Config{}, err
	}
	// Kept only with the settings it was read with, and only when the
	// stat came before the reading: a resolv.conf replaced in between
	// is read again next time.
	c.resolv, c.resolvOK, c.resolvFrom = dcfg, cfg == c.cur && stampErr == nil, stamp
	return dcfg, nil
}
