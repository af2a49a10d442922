package dns

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Kind classifies a failed lookup the way qmail-remote reports it.
type Kind int

const (
	// Temporary: no server gave a usable answer (timeouts, SERVFAIL,
	// lame servers), or every address lookup failed temporarily.
	// qmail-remote: Z "Sorry, I couldn't find any host by that name.
	// (#4.1.2)".
	Temporary Kind = iota + 1
	// NotFound: the name does not exist (NXDOMAIN), cannot be a name,
	// or its CNAME chain loops. qmail-remote: D "Sorry, I couldn't find
	// any host named HOST. (#5.1.2)".
	NotFound
	// NoAddress: the name exists but neither it nor its mail exchangers
	// have an address. qmail-remote: D "Sorry, I couldn't find a mail
	// exchanger or IP address. (#5.4.4)".
	NoAddress
	// NullMX: the domain publishes a null MX (RFC 7505): it accepts no
	// mail at all.
	NullMX
)

func (k Kind) String() string {
	switch k {
	case Temporary:
		return "temporary failure"
	case NotFound:
		return "no such host"
	case NoAddress:
		return "no mail exchanger or address"
	case NullMX:
		return "null MX"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a failed lookup.
type Error struct {
	Kind Kind
	// Host is the name that was looked up.
	Host string
	// Err is the underlying cause, when there is one.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("dns: %s: %s: %v", e.Host, e.Kind, e.Err)
	}
	return fmt.Sprintf("dns: %s: %s", e.Host, e.Kind)
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help: qmail-remote's "D"
// rather than "Z".
func (e *Error) Permanent() bool { return e.Kind != Temporary }

// Report is qmail-remote's text for this failure, without the D/Z letter
// and the final newline. The host name passes through qmail-remote's
// outsafe filter: bytes outside '!'..'~' become '?'.
func (e *Error) Report() string {
	switch e.Kind {
	case NotFound:
		return "Sorry, I couldn't find any host named " + outsafe(e.Host) + ". (#5.1.2)"
	case NoAddress:
		return "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)"
	case NullMX:
		return "Sorry, " + outsafe(e.Host) + " does not accept mail (it publishes a null MX). (#5.1.10)"
	}
	return "Sorry, I couldn't find any host by that name. (#4.1.2)"
}

func outsafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '?'
		}
	}
	return string(b)
}

// Target is one address to try delivering to.
type Target struct {
	// Host is the mail exchanger's name (for TLS name checks and
	// tlshosts/), the host itself when it has no MX, or the literal
	// as given.
	Host string
	// Pref is the MX preference; 0 for hosts without MX and literals.
	Pref int
	Addr netip.Addr
}

// Targets returns where mail for domain goes, in the order qmail-remote
// tries it, as dns_mxip did: MX records by preference, equal preferences
// in random order, each exchanger's IPv4 then IPv6 addresses. Without MX
// records, the domain's own addresses. An IP literal ("1.2.3.4",
// "[1.2.3.4]", "[IPv6:2001:db8::1]") is used as is.
//
// Only the best maxExchangers exchangers are used. Exchangers whose
// lookups fail permanently are skipped, as in qmail;
// when some fail temporarily, the addresses found are still returned and
// the error is nil. Failures are *Error.
func (r *Resolver) Targets(ctx context.Context, domain string) ([]Target, error) {
	if t, ok, err := r.literal(domain); ok || err != nil {
		return t, err
	}
	mxs, err := r.LookupMX(ctx, domain)
	if err != nil {
		return nil, err
	}
	usableMX := mxs[:0:0]
	nullMX := false
	for _, mx := range mxs {
		if mx.Host == "" {
			// "." is never an exchanger; alone, it says no mail.
			nullMX = true
			continue
		}
		usableMX = append(usableMX, mx)
	}
	if len(usableMX) == 0 {
		if nullMX {
			return nil, &Error{Kind: NullMX, Host: domain}
		}
		return r.HostTargets(ctx, domain)
	}
	r.orderMX(usableMX)
	if len(usableMX) > maxExchangers {
		usableMX = usableMX[:maxExchangers]
	}
	var targets []Target
	var soft error
	for _, mx := range usableMX {
		res := r.lookupAddrs(ctx, mx.Host)
		if res.soft != nil {
			soft = res.soft
		}
		for _, addr := range res.addrs {
			targets = append(targets, Target{Host: mx.Host, Pref: int(mx.Pref), Addr: addr})
		}
	}
	if len(targets) == 0 {
		if soft != nil {
			return nil, &Error{Kind: Temporary, Host: domain, Err: soft}
		}
		return nil, &Error{Kind: NoAddress, Host: domain}
	}
	return targets, nil
}

// maxExchangers bounds how many mail exchangers' addresses are looked
// up, the best preferences first: a 64 KiB answer can list thousands, and
// each costs queries.
const maxExchangers = 128

// orderMX sorts by preference and shuffles each run of equal preference
// with r.random.
func (r *Resolver) orderMX(mxs []MX) {
	slices.SortStableFunc(mxs, func(a, b MX) int { return cmp.Compare(a.Pref, b.Pref) })
	for start := 0; start < len(mxs); {
		end := start + 1
		for end < len(mxs) && mxs[end].Pref == mxs[start].Pref {
			end++
		}
		run := mxs[start:end]
		for i := len(run) - 1; i > 0; i-- {
			j := r.random(i + 1)
			run[i], run[j] = run[j], run[i]
		}
		start = end
	}
}

// HostTargets returns host's own addresses, without looking at MX
// records: what qmail-remote does for an smtproutes relay (dns_ip). IP
// literals are used as is. Failures are *Error.
func (r *Resolver) HostTargets(ctx context.Context, host string) ([]Target, error) {
	if t, ok, err := r.literal(host); ok || err != nil {
		return t, err
	}
	res := r.lookupAddrs(ctx, host)
	switch {
	case res.hard != nil:
		return nil, &Error{Kind: NotFound, Host: host, Err: res.hard}
	case res.nxdomain:
		return nil, &Error{Kind: NotFound, Host: host}
	case len(res.addrs) == 0 && res.soft != nil:
		return nil, &Error{Kind: Temporary, Host: host, Err: res.soft}
	case len(res.addrs) == 0:
		return nil, &Error{Kind: NoAddress, Host: host}
	}
	targets := make([]Target, 0, len(res.addrs))
	for _, addr := range res.addrs {
		targets = append(targets, Target{Host: strings.TrimSuffix(host, "."), Addr: addr})
	}
	return targets, nil
}

// literal recognises IP address literals: a bare dotted quad (as qmail's
// ip_scan), "[1.2.3.4]", and "[IPv6:addr]" (RFC 5321) or "[addr]".
func (r *Resolver) literal(host string) ([]Target, bool, error) {
	text := host
	bracketed := strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]")
	if bracketed {
		text = text[1 : len(text)-1]
		if len(text) > 5 && strings.EqualFold(text[:5], "IPv6:") {
			text = text[5:]
		}
	}
	addr, err := netip.ParseAddr(text)
	if err != nil || addr.Zone() != "" {
		if bracketed {
			return nil, false, &Error{Kind: NotFound, Host: host, Err: fmt.Errorf("bad address literal")}
		}
		return nil, false, nil
	}
	if !bracketed && !addr.Is4() {
		return nil, false, nil
	}
	addr = addr.Unmap()
	if addr.Is6() && !r.ipv6 {
		return nil, false, &Error{Kind: NoAddress, Host: host, Err: fmt.Errorf("IPv6 is disabled")}
	}
	return []Target{{Host: host, Addr: addr}}, true, nil
}
