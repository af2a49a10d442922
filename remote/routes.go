package remote

import (
	"strings"

	"github.com/goqmail/goqmail/control"
)

// routeTable is a key:value control file (smtproutes, authsenders) with
// constmap's rules: keys compare case-insensitively (ASCII), lines
// without a colon are ignored, and when a key appears twice the later
// line wins.
type routeTable map[string]string

func newRouteTable(lines []string) routeTable {
	t := routeTable{}
	for _, line := range lines {
		key, value, ok := control.SplitKeyValue(line)
		if !ok {
			continue
		}
		t[strings.ToLower(key)] = value
	}
	return t
}

func (t routeTable) get(key string) (string, bool) {
	v, ok := t[strings.ToLower(key)]
	return v, ok
}

// lookupSuffixes finds the entry for s the way qmail-remote walks its
// constmaps: s itself, then its tail from every separator byte onwards
// (".b.c", ".c"; for authsenders also "@domain"), then "" (catch-all).
func (t routeTable) lookupSuffixes(s string, separators string) (string, bool) {
	for i := 0; i <= len(s); i++ {
		if i != 0 && i != len(s) && strings.IndexByte(separators, s[i]) < 0 {
			continue
		}
		if v, ok := t.get(s[i:]); ok {
			return v, true
		}
	}
	return "", false
}

// Route is where a message goes instead of the recipient domain's mail
// exchangers, and how to log in there.
type Route struct {
	// Relay is the host to connect to (looked up by address only, no
	// MX); empty means the recipient domain's own MX.
	Relay string
	// Port is the TCP port; 25 unless the route says otherwise.
	Port int
	// User and Password are the AUTH credentials (patch 0008); both
	// must be set for AUTH to be tried.
	User, Password string
}

// HasAuth reports whether AUTH is to be tried.
func (r Route) HasAuth() bool { return r.User != "" && r.Password != "" }

// parseRoute splits "relay[:port][|user|password]". An IPv6 relay is
// written in brackets, "[2001:db8::1]:2525", so that its colons are not
// taken for the port separator; the brackets stay on the relay (a
// literal the resolver understands).
func parseRoute(value string) Route {
	r := Route{Port: defaultPort}
	if bar := strings.IndexByte(value, '|'); bar >= 0 {
		if user, pass, ok := strings.Cut(value[bar+1:], "|"); ok {
			r.User, r.Password = user, pass
		}
		value = value[:bar]
	}
	hostEnd := 0
	if strings.HasPrefix(value, "[") {
		if end := strings.IndexByte(value, ']'); end >= 0 {
			hostEnd = end + 1
		}
	}
	if colon := strings.IndexByte(value[hostEnd:], ':'); colon >= 0 {
		r.Port, _ = control.ScanUlong(value[hostEnd+colon+1:])
		value = value[:hostEnd+colon]
	}
	r.Relay = value
	return r
}

const defaultPort = 25

// chooseRoute applies authsenders (checked first, keyed by the quoted
// sender) and then smtproutes (keyed by the recipient host), as patch
// 0008's qmail-remote does. ok is false when neither applies.
func chooseRoute(authsenders, smtproutes routeTable, sender, host string) (Route, bool) {
	if v, ok := authsenders.lookupSuffixes(sender, ".@"); ok && v != "" {
		return parseRoute(v), true
	}
	if v, ok := smtproutes.lookupSuffixes(host, "."); ok && v != "" {
		return parseRoute(v), true
	}
	return Route{Port: defaultPort}, false
}
