package remote

import (
	"fmt"
	"net"
	"net/netip"
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
