// Package dns is goqmail's stub resolver: what netqmail's dns.c asked of
// the C library, with the Debian patches' behaviour (no CNAME/ANY lookups,
// answers of any size through EDNS0 and TCP), IPv6 addresses, and a cache.
// See docs/dns.md for the outcome of every kind of server behaviour.
package dns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Options are the tunables of a Resolver beyond its Config. The zero
// value is the production setting.
type Options struct {
	// DisableIPv6 stops AAAA lookups: targets and LookupIP give IPv4
	// addresses only, and IPv6 literals are unusable.
	DisableIPv6 bool
	// CacheSize is the number of answers kept; 0 means DefaultCacheSize,
	// a negative value disables the cache.
	CacheSize int
	// EDNSSize is the UDP payload size advertised; 0 means
	// DefaultEDNSSize. Values below 512 are raised to 512.
	EDNSSize uint16
	// Random returns a number in [0, n); it orders MX records of equal
	// preference. nil means math/rand/v2.
	Random func(n int) int
	// Now is the clock the cache runs on; nil means time.Now.
	Now func() time.Time
	// Trace, when set, is told about every query sent to a server. It
	// may be called from several goroutines at once.
	Trace func(Exchange)
}

// Resolver asks the configured servers and caches their answers. It is
// safe for concurrent use; concurrent lookups of the same question share
// one query.
type Resolver struct {
	servers    []string
	timeout    time.Duration
	attempts   int
	rotate     bool
	ipv6       bool
	ednsSize   uint16
	random     func(int) int
	now        func() time.Time
	traceFunc  func(Exchange)
	cache      *cache
	nextServer atomic.Uint32 // rotation start
	inflightMu sync.Mutex
	inflight   map[cacheKey]*call
}

// call is a query in progress that other lookups of the same question
// wait for.
type call struct {
	done  chan struct{}
	value rrset
	err   error
	// abandoned: the query failed because its caller's context ended,
	// which says nothing about the answer.
	abandoned bool
}

// New makes a Resolver. A Config without servers asks 127.0.0.1, as the C
// library does.
func New(cfg Config, opts Options) *Resolver {
	r := &Resolver{
		servers:   cfg.Servers,
		timeout:   cfg.Timeout,
		attempts:  cfg.Attempts,
		rotate:    cfg.Rotate,
		ipv6:      !opts.DisableIPv6,
		ednsSize:  max(opts.EDNSSize, 512),
		random:    opts.Random,
		now:       opts.Now,
		traceFunc: opts.Trace,
		inflight:  map[cacheKey]*call{},
	}
	if len(r.servers) == 0 {
		r.servers = []string{defaultServer}
	}
	if r.timeout <= 0 {
		r.timeout = defaultTimeout
	}
	if r.attempts <= 0 {
		r.attempts = defaultAttempts
	}
	if opts.EDNSSize == 0 {
		r.ednsSize = DefaultEDNSSize
	}
	if r.random == nil {
		r.random = rand.IntN
	}
	if r.now == nil {
		r.now = time.Now
	}
	size := opts.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	r.cache = newCache(size)
	return r
}

// allowedTypes are the only query types sent. In particular never ANY or
// CNAME (Debian patch 0004): CNAMEs are followed inside answers.
var allowedTypes = map[uint16]bool{
	mdns.TypeA: true, mdns.TypeAAAA: true, mdns.TypeMX: true,
	mdns.TypePTR: true, mdns.TypeTXT: true,
}

// errTemporary marks failures that may go away: no server gave a usable
// answer.
var errTemporary = errors.New("temporary DNS failure")

// query asks the servers about (name, qtype) until one gives a usable
// answer: Attempts rounds over the servers, each server having Timeout.
// It fails with an error wrapping errTemporary, or a *badNameError.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (rrset, error) {
	start := 0
	if r.rotate {
		start = int(r.nextServer.Add(1)-1) % len(r.servers)
	}
	var last error
	for range r.attempts {
		for i := range r.servers {
			if err := ctx.Err(); err != nil {
				return rrset{}, fmt.Errorf("%w: %w", errTemporary, err)
			}
			server := r.servers[(start+i)%len(r.servers)]
			reply, err := r.exchangeServer(ctx, server, name, qtype)
			if err != nil {
				var bad *badNameError
				if errors.As(err, &bad) {
					return rrset{}, err
				}
				last = err
				continue
			}
			rs, err := extract(name, qtype, reply)
			if errors.Is(err, errForeignAnswer) {
				last = fmt.Errorf("%s: %w", server, err)
				continue
			}
			return rs, err
		}
	}
	return rrset{}, fmt.Errorf("%w: %w", errTemporary, last)
}

// cachedQuery is query through the cache, sharing concurrent identical
// queries.
func (r *Resolver) cachedQuery(ctx context.Context, name string, qtype uint16) (rrset, error) {
	key := cacheKey{name: name, qtype: qtype}
	for {
		if rs, ok := r.cache.get(key, r.now()); ok {
			return rs, nil
		}
		r.inflightMu.Lock()
		c, waiting := r.inflight[key]
		if !waiting {
			c = &call{done: make(chan struct{})}
			r.inflight[key] = c
		}
		r.inflightMu.Unlock()
		if !waiting {
			c.value, c.err = r.query(ctx, name, qtype)
			c.abandoned = c.err != nil && ctx.Err() != nil
			if c.err == nil {
				r.cache.put(key, c.value, r.now())
			}
			r.inflightMu.Lock()
			delete(r.inflight, key)
			r.inflightMu.Unlock()
			close(c.done)
			return c.value, c.err
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return rrset{}, fmt.Errorf("%w: %w", errTemporary, ctx.Err())
		}
		// The query we waited for gave up because its own caller
		// did; ours may still go on: ask again.
		if c.abandoned {
			continue
		}
		return c.value, c.err
	}
}

// resolve looks (name, qtype) up, following CNAME targets that answers
// leave unresolved, for at most maxCNAMEHops CNAMEs in all.
func (r *Resolver) resolve(ctx context.Context, name string, qtype uint16) (rrset, error) {
	if !allowedTypes[qtype] {
		return rrset{}, fmt.Errorf("query type %s is never asked", mdns.TypeToString[qtype])
	}
	name = mdns.CanonicalName(name)
	hops := 0
	for {
		rs, err := r.cachedQuery(ctx, name, qtype)
		if err != nil {
			return rrset{}, err
		}
		hops += rs.hops
		if hops > maxCNAMEHops {
			return rrset{}, errCNAMELoop
		}
		if rs.next == "" {
			return rs, nil
		}
		name = mdns.CanonicalName(rs.next)
	}
}

// lookupError turns a resolve failure into the *Error for host.
func lookupError(host string, err error) *Error {
	if errors.Is(err, errTemporary) {
		return &Error{Kind: Temporary, Host: host, Err: err}
	}
	// A bad name or a CNAME loop: no server will ever answer better,
	// as qmail's DNS_HARD.
	return &Error{Kind: NotFound, Host: host, Err: err}
}

// validName rejects names no query can carry before any server is asked:
// empty, or with an empty label.
func validName(host string) error {
	h := strings.TrimSuffix(host, ".")
	if h == "" || strings.Contains(h, "..") || strings.HasPrefix(h, ".") {
		return fmt.Errorf("bad domain name %q", host)
	}
	if _, ok := mdns.IsDomainName(h); !ok {
		return fmt.Errorf("bad domain name %q", host)
	}
	return nil
}

// MX is one mail exchanger record.
type MX struct {
	Pref uint16
	// Host is the exchanger's name without the final dot; "" for the
	// null MX's ".".
	Host string
}

// LookupMX returns the MX records of domain in the server's order. A
// domain without MX records gives none and no error; a domain that does
// not exist gives an *Error of Kind NotFound.
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	if err := validName(domain); err != nil {
		return nil, &Error{Kind: NotFound, Host: domain, Err: err}
	}
	rs, err := r.resolve(ctx, domain, mdns.TypeMX)
	if err != nil {
		return nil, lookupError(domain, err)
	}
	if rs.nxdomain {
		return nil, &Error{Kind: NotFound, Host: domain}
	}
	mxs := make([]MX, 0, len(rs.records))
	for _, rr := range rs.records {
		mx := rr.(*mdns.MX)
		mxs = append(mxs, MX{Pref: mx.Preference, Host: strings.TrimSuffix(mx.Mx, ".")})
	}
	return mxs, nil
}

// addrResult is what the A and AAAA lookups of one host gave.
type addrResult struct {
	addrs []netip.Addr
	// soft: a lookup failed temporarily.
	soft error
	// nxdomain: the host does not exist.
	nxdomain bool
	// hard: a lookup failed for good (bad name, CNAME loop).
	hard error
}

// lookupAddrs asks for host's A records, then its AAAA records unless
// IPv6 is off. IPv4 addresses come first: qmail only ever had those, and
// they remain the surest path.
func (r *Resolver) lookupAddrs(ctx context.Context, host string) addrResult {
	var res addrResult
	if err := validName(host); err != nil {
		res.hard = err
		return res
	}
	types := []uint16{mdns.TypeA}
	if r.ipv6 {
		types = append(types, mdns.TypeAAAA)
	}
	for _, qtype := range types {
		rs, err := r.resolve(ctx, host, qtype)
		switch {
		case errors.Is(err, errTemporary):
			res.soft = err
			continue
		case err != nil:
			res.hard = err
			return res
		case rs.nxdomain:
			// NXDOMAIN holds for every type: no point asking AAAA.
			res.nxdomain = true
			return res
		}
		for _, rr := range rs.records {
			switch a := rr.(type) {
			case *mdns.A:
				if addr, ok := netip.AddrFromSlice(a.A.To4()); ok {
					res.addrs = append(res.addrs, addr)
				}
			case *mdns.AAAA:
				if addr, ok := netip.AddrFromSlice(a.AAAA); ok {
					res.addrs = append(res.addrs, addr)
				}
			}
		}
	}
	return res
}

// LookupIP returns host's IPv4 addresses, then its IPv6 addresses (unless
// IPv6 is off). A host without addresses gives none and no error.
// Failures are *Error: NotFound for a host that does not exist, Temporary
// when no address was found and some lookup failed temporarily.
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	res := r.lookupAddrs(ctx, host)
	switch {
	case res.hard != nil:
		return nil, &Error{Kind: NotFound, Host: host, Err: res.hard}
	case res.nxdomain:
		return nil, &Error{Kind: NotFound, Host: host}
	case len(res.addrs) == 0 && res.soft != nil:
		return nil, &Error{Kind: Temporary, Host: host, Err: res.soft}
	}
	return res.addrs, nil
}

// LookupPTR returns the names of addr (IPv4 or IPv6) without their final
// dots. No PTR record, or no such name, is an *Error of Kind NotFound, as
// qmail's dns_ptr gave DNS_HARD for both.
func (r *Resolver) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error) {
	arpa, err := mdns.ReverseAddr(addr.Unmap().WithZone("").String())
	if err != nil {
		return nil, &Error{Kind: NotFound, Host: addr.String(), Err: err}
	}
	rs, err := r.resolve(ctx, arpa, mdns.TypePTR)
	if err != nil {
		return nil, lookupError(arpa, err)
	}
	if len(rs.records) == 0 {
		return nil, &Error{Kind: NotFound, Host: arpa}
	}
	names := make([]string, 0, len(rs.records))
	for _, rr := range rs.records {
		names = append(names, strings.TrimSuffix(rr.(*mdns.PTR).Ptr, "."))
	}
	return names, nil
}

// LookupTXT returns the strings of each TXT record of name (each record's
// character-strings concatenated). No record gives none and no error.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := validName(name); err != nil {
		return nil, &Error{Kind: NotFound, Host: name, Err: err}
	}
	rs, err := r.resolve(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, lookupError(name, err)
	}
	if rs.nxdomain {
		return nil, &Error{Kind: NotFound, Host: name}
	}
	txts := make([]string, 0, len(rs.records))
	for _, rr := range rs.records {
		txts = append(txts, strings.Join(rr.(*mdns.TXT).Txt, ""))
	}
	return txts, nil
}
