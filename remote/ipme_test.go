package remote

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestLocalAddrsKept: the list is kept for ipmeTTL, then listed again;
// a clock that went back lists it again too. It holds the loopback and
// the unspecified addresses, as qmail's ipme.
func TestLocalAddrsKept(t *testing.T) {
	var l LocalAddrs
	t0 := time.Unix(1_800_000_000, 0)
	first, err := l.Get(t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1", "0.0.0.0", "::"} {
		if !first[netip.MustParseAddr(a)] {
			t.Errorf("%s missing from %v", a, first)
		}
	}
	same := func(a, b map[netip.Addr]bool) bool { return fmt.Sprintf("%p", a) == fmt.Sprintf("%p", b) }
	tests := []struct {
		name  string
		at    time.Time
		fresh bool
	}{
		{"within the TTL", t0.Add(ipmeTTL - time.Millisecond), false},
		{"after the TTL", t0.Add(ipmeTTL), true},
		{"clock went back", t0.Add(-time.Second), true},
	}
	prev := first
	for _, tt := range tests {
		got, err := l.Get(tt.at)
		if err != nil {
			t.Fatal(err)
		}
		if same(got, prev) == tt.fresh {
			t.Errorf("%s: listed again %v, want %v", tt.name, !same(got, prev), tt.fresh)
		}
		prev = got
	}
}
