package remote

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/dns"
)

// Resolver is what qmail-remote asks of DNS; *dns.Resolver provides it.
// Failures are *dns.Error.
type Resolver interface {
	// Targets: the mail exchangers' addresses for a domain, best first.
	Targets(ctx context.Context, domain string) ([]dns.Target, error)
	// HostTargets: a relay's own addresses (no MX lookup).
	HostTargets(ctx context.Context, host string) ([]dns.Target, error)
}

// Delivery is one run of qmail-remote.
type Delivery struct {
	// Home is the qmail home: control/ and queue/lock/tcpto live there.
	Home string
	// Host, Sender and Recipients are qmail-remote's arguments.
	Host       string
	Sender     string
	Recipients []string
	// Message is the message as queued (fd 0); Size its length in bytes
	// when known (for SIZE=), else -1.
	Message io.Reader
	Size    int64
	// LocalAddrs, when not nil, keeps the list of this host's addresses
	// (qmail's ipme) between deliveries; nil lists them for this one.
	LocalAddrs *LocalAddrs
	// Resolver, when nil, is built from control/dnsservers,
	// /etc/resolv.conf and control/ipv6.
	Resolver Resolver
	// Port, when nonzero, replaces port 25 for mail exchangers (smtproutes
	// ports still apply). qmail-remote itself never sets it; package
	// tests use it to reach a test server on an ephemeral port.
	Port int
	// Dial connects; nil means a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Pid and Now feed lock/tcpto; zero values mean os.Getpid and
	// time.Now.
	Pid int
	Now func() time.Time
	// Conns, when not nil, keeps the connection open after an accepted
	// message and provides kept connections (ConnCache); nil ends every
	// connection with QUIT, as qmail-remote does.
	Conns *ConnCache
	// Settings, when not nil, keeps the control settings between
	// deliveries (a worker's, SettingsCache); nil reads them for this one.
	Settings *SettingsCache
}

// Run delivers and writes qmail-remote's reports to out: recipient
// reports, then the message report, each followed by a NUL. It returns
// only an error writing out; every delivery problem is a report.
func Run(d *Delivery, out io.Writer) error {
	w := bufio.NewWriter(out)
	recips, o := d.deliver()
	for _, r := range recips {
		w.WriteByte(r.Kind)
		w.WriteString(r.Text)
		w.WriteByte(0)
	}
	w.WriteByte(o.Kind)
	w.WriteString(o.Text)
	w.WriteByte(0)
	return w.Flush()
}

var (
	usage       = &Outcome{'D', "I (qmail-remote) was invoked improperly. (#5.3.5)\n"}
	noControl   = &Outcome{'Z', "Unable to read control files. (#4.3.0)\n"}
	noResources = &Outcome{'Z', "System resources temporarily unavailable. (#4.3.0)\n"}
	noConnect   = &Outcome{'Z', "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"}
	tempDNS     = &Outcome{'Z', "Sorry, I couldn't find any host by that name. (#4.1.2)\n"}
	ambiguousMX = &Outcome{'D', "Sorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n"}
	badAddress  = &Outcome{'D', "SMTP cannot transfer addresses containing CR or LF. (#5.1.3)\n"}
)

// settings are the control files qmail-remote reads per delivery.
type settings struct {
	ctl            *control.Files
	helohost       string
	timeout        time.Duration
	connectTimeout time.Duration
	smtproutes     routeTable
	authsenders    routeTable
	ipv6           bool
}

func readSettings(home string) (*settings, error) {
	ctl, err := control.Open(home)
	if err != nil {
		return nil, err
	}
	s := &settings{ctl: ctl}
	remote, err := ctl.Int("timeoutremote", 1200)
	if err != nil {
		return nil, err
	}
	connect, err := ctl.Int("timeoutconnect", 60)
	if err != nil {
		return nil, err
	}
	s.timeout = controlSeconds(remote)
	s.connectTimeout = controlSeconds(connect)
	helo, ok, err := ctl.Line("helohost")
	if err != nil {
		return nil, err
	}
	if !ok {
		me, meOK := ctl.Me()
		if !meOK {
			return nil, errors.New("neither control/helohost nor control/me exists")
		}
		helo = me
	}
	s.helohost = helo
	routes, _, err := ctl.List("smtproutes")
	if err != nil {
		return nil, err
	}
	s.smtproutes = newRouteTable(routes)
	senders, _, err := ctl.List("authsenders")
	if err != nil {
		return nil, err
	}
	s.authsenders = newRouteTable(senders)
	v6, ok, err := ctl.Line("ipv6")
	if err != nil {
		return nil, err
	}
	s.ipv6 = !ok || v6 != "0"
	return s, nil
}

// maxControlSeconds caps timeouts read from control files: a larger
// number of seconds overflows time.Duration and would become a deadline
// in the past, failing every delivery where qmail waits practically
// forever.
const maxControlSeconds = 1 << 31

// controlSeconds turns a timeout control file's value into a duration of
// at least a second.
func controlSeconds(n int) time.Duration {
	return time.Duration(min(max(n, 1), maxControlSeconds)) * time.Second
}

func (d *Delivery) deliver() ([]recipientReport, *Outcome) {
	if len(d.Recipients) == 0 {
		return nil, usage
	}
	var cfg *settings
	var err error
	if d.Settings != nil {
		cfg, err = d.Settings.settings(d.Home)
	} else {
		cfg, err = readSettings(d.Home)
	}
	if err != nil {
		return nil, noControl
	}
	if cfg.helohost == "" || !validHelo(cfg.helohost) {
		return nil, noControl
	}
	sender, err := smtpAddress(d.Sender)
	if err != nil {
		return nil, badAddress
	}
	var recips []string
	allAliases := true
	for _, r := range d.Recipients {
		q, err := smtpAddress(r)
		if err != nil {
			return nil, badAddress
		}
		recips = append(recips, q)
		if containsAt(r) {
			allAliases = false
		}
	}
	route, routed := chooseRoute(cfg.authsenders, cfg.smtproutes, sender, d.Host)
	relay := routed && route.Relay != ""
	resolver := d.Resolver
	if resolver == nil {
		var dcfg dns.Config
		if d.Settings != nil {
			dcfg, err = d.Settings.dnsConfig(cfg, dns.ResolvConf)
		} else {
			dcfg, err = dns.LoadConfig(cfg.ctl, dns.ResolvConf)
		}
		if err != nil {
			return nil, noControl
		}
		resolver = dns.New(dcfg, dns.Options{DisableIPv6: !cfg.ipv6})
	}
	ctx := context.Background()
	var targets []dns.Target
	if relay {
		targets, err = resolver.HostTargets(ctx, route.Relay)
	} else {
		targets, err = resolver.Targets(ctx, d.Host)
	}
	if err != nil {
		var de *dns.Error
		if errors.As(err, &de) {
			kind := byte('Z')
			if de.Permanent() {
				kind = 'D'
			}
			return nil, &Outcome{kind, de.Report() + "\n"}
		}
		return nil, tempDNS
	}
	if !cfg.ipv6 {
		targets = onlyIPv4(targets)
	}
	if len(targets) == 0 {
		return nil, tempDNS
	}
	var me map[netip.Addr]bool
	if d.LocalAddrs != nil {
		me, err = d.LocalAddrs.Get(time.Now())
	} else {
		me, err = localAddrs()
	}
	if err != nil {
		return nil, noResources
	}
	prefMe := 100000
	for _, t := range targets {
		if me[t.Addr.Unmap()] && t.Pref < prefMe {
			prefMe = t.Pref
		}
	}
	if relay {
		prefMe = 300000
	}
	if allAliases && !relay {
		prefMe = 500000
	}
	usable := targets[:0:0]
	for _, t := range targets {
		if t.Pref < prefMe {
			usable = append(usable, t)
		}
	}
	if len(usable) == 0 {
		return nil, ambiguousMX
	}
	port := route.Port
	if !routed && d.Port != 0 {
		port = d.Port
	}
	pid := d.Pid
	if pid == 0 {
		pid = os.Getpid()
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	dial := d.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	keyOf := func(t dns.Target) connKey {
		return connKey{
			addr:     net.JoinHostPort(t.Addr.Unmap().String(), strconv.Itoa(port)),
			fqdn:     t.Host,
			helohost: cfg.helohost,
			route:    route,
			implicit: port == 465,
		}
	}
	if d.Conns != nil {
		preferKept(usable, d.Conns, keyOf)
	}
	tcpto := NewTCPTO(TCPTOPath(d.Home), pid, now)
	for _, t := range usable {
		if cc := d.Conns.take(keyOf(t)); cc != nil {
			if reports, o, ok := d.reuse(cc, cfg, t, route, sender, recips); ok {
				return reports, o
			}
			// The peer had ended it: a new connection, as if none had
			// been kept.
		}
		if tcpto.Skip(t.Addr) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, cfg.connectTimeout)
		conn, err := dial(cctx, "tcp", net.JoinHostPort(t.Addr.Unmap().String(), strconv.Itoa(port)))
		timedOut := cctx.Err() != nil || isTimeout(err)
		cancel()
		if err != nil {
			tcpto.Record(t.Addr, timedOut)
			continue
		}
		tcpto.Record(t.Addr, false)
		s := d.newSession(cfg, t, route, port == 465, sender, recips)
		if s.implicit {
			s.implicitPolicy, err = decideTLS(cfg.ctl, t.Host)
			if err != nil {
				conn.Close()
				return nil, noControl
			}
		}
		s.tcp = &deadlineConn{Conn: conn, timeout: cfg.timeout}
		s.setConn(s.tcp)
		o := s.run()
		if s.kept {
			d.Conns.put(s.keepConn(keyOf(t)))
		} else {
			conn.Close()
		}
		return s.reports, o
	}
	return nil, noConnect
}

// reuse delivers on the kept connection cc to target t. ok is false,
// with cc closed and nothing reported, when the connection turns out to
// be unusable before the peer accepted anything of this message: the
// tlshosts/ verdict for t changed, something arrived on it while it was
// idle, or the peer is gone or closing (421) at MAIL FROM.
func (d *Delivery) reuse(cc *cachedConn, cfg *settings, t dns.Target, route Route, sender string, recips []string) ([]recipientReport, *Outcome, bool) {
	if !cc.quiet() {
		cc.tcp.Close()
		return nil, nil, false
	}
	if policy, err := decideTLS(cfg.ctl, t.Host); err != nil || policy != cc.policy {
		cc.quit()
		return nil, nil, false
	}
	s := d.newSession(cfg, t, route, cc.key.implicit, sender, recips)
	o := s.resume(cc)
	if o == staleConn {
		cc.tcp.Close()
		return nil, nil, false
	}
	if s.kept {
		d.Conns.put(cc)
	} else {
		cc.tcp.Close()
	}
	return s.reports, o, true
}

// newSession is the SMTP session for this delivery to target t, on a
// new or a kept connection.
func (d *Delivery) newSession(cfg *settings, t dns.Target, route Route, implicit bool, sender string, recips []string) *session {
	return &session{
		ctl:        cfg.ctl,
		timeout:    cfg.timeout,
		partner:    t.Addr.Unmap().String(),
		fqdn:       t.Host,
		helohost:   cfg.helohost,
		route:      route,
		implicit:   implicit,
		sender:     sender,
		recipients: recips,
		message:    d.Message,
		size:       d.Size,
		keep:       d.Conns != nil,
	}
}

// preferKept moves a target with a kept connection to the front when it
// is as preferred as the first: qmail picks among equally preferred
// exchangers at random, and the one already connected is as good a pick
// as any.
func preferKept(usable []dns.Target, conns *ConnCache, keyOf func(dns.Target) connKey) {
	for i, t := range usable {
		if t.Pref != usable[0].Pref {
			return
		}
		if conns.has(keyOf(t)) {
			copy(usable[1:i+1], usable[:i])
			usable[0] = t
			return
		}
	}
}

func containsAt(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '@' {
			return true
		}
	}
	return false
}

// validHelo refuses a helohost that would break the EHLO line.
func validHelo(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' || s[i] == 0 {
			return false
		}
	}
	return true
}

func onlyIPv4(ts []dns.Target) []dns.Target {
	out := ts[:0:0]
	for _, t := range ts {
		if t.Addr.Unmap().Is4() {
			out = append(out, t)
		}
	}
	return out
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// FileSize is the size of an already opened message file, or -1 when
// it is not a regular file.
func FileSize(f *os.File) int64 {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return -1
	}
	return st.Size()
}

// Usage reports a call with fewer than three arguments.
func Usage(out io.Writer) error { return writeOutcome(out, usage) }

// NoHome reports that the qmail home is unreachable.
func NoHome(out io.Writer) error {
	return writeOutcome(out, &Outcome{'Z', "Unable to switch to home directory. (#4.3.0)\n"})
}

func writeOutcome(out io.Writer, o *Outcome) error {
	_, err := io.WriteString(out, string(o.Kind)+o.Text+"\x00")
	return err
}
