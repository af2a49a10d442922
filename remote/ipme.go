package remote

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// localAddrs is qmail's ipme: the addresses of this host's interfaces,
// plus the unspecified addresses (0.0.0.0, and :: for IPv6), which
// connect to this host too.
func localAddrs() (map[netip.Addr]bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing local addresses: %w", err)
	}
	me := map[netip.Addr]bool{
		netip.IPv4Unspecified(): true,
		netip.IPv6Unspecified(): true,
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			me[p.Addr().Unmap()] = true
		}
	}
	return me, nil
}

// ipmeTTL is how long a LocalAddrs keeps the list: an address added to
// this host is recognised as its own within it.
const ipmeTTL = 10 * time.Second

// LocalAddrs keeps localAddrs for ipmeTTL. A qmail-remote worker delivers
// many messages; listing the interfaces (a netlink dump) for each was a
// tenth of its CPU. It is safe for concurrent use.
type LocalAddrs struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
}

// Get returns the addresses, listed again when the last list is older
// than ipmeTTL at now. The map must not be modified.
func (l *LocalAddrs) Get(now time.Time) (map[netip.Addr]bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.addrs != nil && now.Sub(l.at) < ipmeTTL && !now.Before(l.at) {
		return l.addrs, nil
	}
	addrs, err := localAddrs()
	if err != nil {
		return nil, err
	}
	l.addrs, l.at = addrs, now
	return addrs, nil
}
