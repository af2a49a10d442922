package dns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/testdns"
	mdns "github.com/miekg/dns"
)

// The zones served by the real server. Sizes are chosen so that the
// medium MX answer exceeds 512 bytes but fits the EDNS0 payload
// (DefaultEDNSSize), and the big MX answer and the TXT set exceed 4096
// bytes, so that they need TCP.
const (
	mediumMXCount = 14
	bigMXCount    = 100
	txtCount      = 200
)

func mediumMXHost(i int) string {
	return fmt.Sprintf("m%02d-exchanger-with-a-long-name-for-size.goqmail.test", i)
}

func bigMXHost(i int) string {
	return fmt.Sprintf("h%03d-exchanger-with-a-much-longer-name-to-make-the-answer-big.goqmail.test", i)
}

func txtString(i int) string {
	return fmt.Sprintf("record %03d %s", i, strings.Repeat("x", 200))
}

func goqmailZone() string {
	var b strings.Builder
	b.WriteString(`$ORIGIN goqmail.test.
$TTL 300
@ IN SOA ns.goqmail.test. hostmaster.goqmail.test. 1 3600 600 86400 60
@ IN NS ns
ns IN A 127.0.0.1
mail IN A 192.0.2.1
mail IN AAAA 2001:db8::1
simple IN MX 10 mail
nomx IN A 192.0.2.2
nomx IN AAAA 2001:db8::2
v6only IN MX 10 v6host
v6host IN AAAA 2001:db8::6
nullmx IN MX 0 .
noaddr IN MX 10 nowhere
nowhere IN TXT "exists, but has no address"
chain1 IN CNAME chain2
chain2 IN CNAME chain3
chain3 IN MX 10 mail
away IN CNAME simple.other.test.
`)
	for i := range mediumMXCount {
		fmt.Fprintf(&b, "medium IN MX %d %s.\n", 10*(i%3), mediumMXHost(i))
		fmt.Fprintf(&b, "%s. IN A 192.0.2.%d\n", mediumMXHost(i), 100+i)
	}
	for i := range bigMXCount {
		fmt.Fprintf(&b, "big IN MX %d %s.\n", i%5, bigMXHost(i))
		fmt.Fprintf(&b, "%s. IN A 198.51.100.%d\n", bigMXHost(i), i)
	}
	for i := range txtCount {
		fmt.Fprintf(&b, "txt IN TXT %q\n", txtString(i))
	}
	return b.String()
}

const otherZone = `$ORIGIN other.test.
$TTL 300
@ IN SOA ns.other.test. hostmaster.other.test. 1 3600 600 86400 60
@ IN NS ns.goqmail.test.
simple IN MX 20 mail.goqmail.test.
`

const reverseZone = `$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@ IN SOA ns.goqmail.test. hostmaster.goqmail.test. 1 3600 600 86400 60
@ IN NS ns.goqmail.test.
2 IN PTR nomx.goqmail.test.
`

// TestNSD runs the resolver against a real authoritative server.
func TestNSD(t *testing.T) {
	t.Parallel()
	server := testdns.StartNSD(t,
		testdns.Zone{Name: "goqmail.test", Content: goqmailZone()},
		testdns.Zone{Name: "other.test", Content: otherZone},
		testdns.Zone{Name: "2.0.192.in-addr.arpa", Content: reverseZone},
	)
	ctx := context.Background()

	// The sizes really are what the test needs: the medium answer is
	// truncated without EDNS0, the big ones even with a 4096-byte
	// buffer.
	rawUDP := func(name string, qtype uint16, edns uint16) *mdns.Msg {
		t.Helper()
		q := new(mdns.Msg).SetQuestion(name, qtype)
		if edns > 0 {
			q.SetEdns0(edns, false)
		}
		reply, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(q, server)
		if err != nil {
			t.Fatalf("raw query %s: %v", name, err)
		}
		return reply
	}
	if !rawUDP("medium.goqmail.test.", mdns.TypeMX, 0).Truncated {
		t.Error("medium MX answer fits 512 bytes: the test proves nothing")
	}
	if rawUDP("medium.goqmail.test.", mdns.TypeMX, DefaultEDNSSize).Truncated {
		t.Error("medium MX answer does not fit the EDNS0 payload")
	}
	if !rawUDP("big.goqmail.test.", mdns.TypeMX, 4096).Truncated {
		t.Error("big MX answer fits 4096 bytes: the test proves nothing")
	}
	if !rawUDP("txt.goqmail.test.", mdns.TypeTXT, 4096).Truncated {
		t.Error("TXT answer fits 4096 bytes: the test proves nothing")
	}

	type exchange struct {
		name string
		tcp  bool
		size int
	}
	var mu sync.Mutex
	var exchanges []exchange
	r := New(Config{Servers: []string{server}, Timeout: 5 * time.Second, Attempts: 2}, Options{
		Random: func(n int) int { return n - 1 }, // keep the server's order among equals
		Trace: func(e Exchange) {
			if e.Err == nil {
				mu.Lock()
				exchanges = append(exchanges, exchange{e.Name, e.TCP, e.Size})
				mu.Unlock()
			}
		},
	})
	exchangeFor := func(name string) exchange {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range exchanges {
			if e.name == name {
				return e
			}
		}
		t.Fatalf("no exchange for %s", name)
		return exchange{}
	}

	t.Run("medium MX over UDP with EDNS0", func(t *testing.T) {
		targets, err := r.Targets(ctx, "medium.goqmail.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(targets) != mediumMXCount {
			t.Fatalf("%d targets, want %d", len(targets), mediumMXCount)
		}
		if !slices.IsSortedFunc(targets, func(a, b Target) int { return a.Pref - b.Pref }) {
			t.Errorf("not in preference order: %v", targets)
		}
		seen := map[string]bool{}
		for _, tg := range targets {
			i := 0
			fmt.Sscanf(tg.Host, "m%02d", &i)
			if tg.Host != mediumMXHost(i) || tg.Pref != 10*(i%3) || tg.Addr != netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}) {
				t.Errorf("wrong target %+v", tg)
			}
			seen[tg.Host] = true
		}
		if len(seen) != mediumMXCount {
			t.Errorf("%d distinct hosts, want %d", len(seen), mediumMXCount)
		}
		if e := exchangeFor("medium.goqmail.test."); e.tcp || e.size <= 512 {
			t.Errorf("medium answer: %+v, want over 512 bytes by UDP", e)
		}
	})

	t.Run("big MX needs TCP", func(t *testing.T) {
		targets, err := r.Targets(ctx, "big.goqmail.test")
		if err != nil {
			t.Fatal(err)
		}
		if len(targets) != bigMXCount {
			t.Fatalf("%d targets, want %d", len(targets), bigMXCount)
		}
		for i, tg := range targets {
			if i > 0 && tg.Pref < targets[i-1].Pref {
				t.Errorf("target %d out of order", i)
			}
			n := 0
			fmt.Sscanf(tg.Host, "h%03d", &n)
			if tg.Host != bigMXHost(n) || tg.Pref != n%5 || tg.Addr != netip.AddrFrom4([4]byte{198, 51, 100, byte(n)}) {
				t.Errorf("wrong target %+v", tg)
			}
		}
		if e := exchangeFor("big.goqmail.test."); !e.tcp || e.size <= 4096 {
			t.Errorf("big answer: %+v, want over 4096 bytes by TCP", e)
		}
	})

	t.Run("huge TXT set", func(t *testing.T) {
		txts, err := r.LookupTXT(ctx, "txt.goqmail.test")
		if err != nil {
			t.Fatal(err)
		}
		want := make([]string, txtCount)
		for i := range want {
			want[i] = txtString(i)
		}
		slices.Sort(txts)
		if !slices.Equal(txts, want) {
			t.Errorf("got %d TXT strings, want %d", len(txts), len(want))
		}
		if e := exchangeFor("txt.goqmail.test."); !e.tcp || e.size <= 32768 {
			t.Errorf("TXT answer: %+v, want over 32 KiB by TCP", e)
		}
	})

	tests := []struct{ domain, want string }{
		{"simple.goqmail.test", "10 mail.goqmail.test 192.0.2.1, 10 mail.goqmail.test 2001:db8::1"},
		{"nomx.goqmail.test", "0 nomx.goqmail.test 192.0.2.2, 0 nomx.goqmail.test 2001:db8::2"},
		{"v6only.goqmail.test", "10 v6host.goqmail.test 2001:db8::6"},
		{"chain1.goqmail.test", "10 mail.goqmail.test 192.0.2.1, 10 mail.goqmail.test 2001:db8::1"},
		{"away.goqmail.test", "20 mail.goqmail.test 192.0.2.1, 20 mail.goqmail.test 2001:db8::1"},
		{"nullmx.goqmail.test", "null MX"},
		{"noaddr.goqmail.test", "no mail exchanger or address"},
		{"absent.goqmail.test", "no such host"},
		{"Simple.GOQMAIL.test.", "10 mail.goqmail.test 192.0.2.1, 10 mail.goqmail.test 2001:db8::1"},
	}
	for _, tc := range tests {
		if got := result(r.Targets(ctx, tc.domain)); got != tc.want {
			t.Errorf("Targets(%q) = %q, want %q", tc.domain, got, tc.want)
		}
	}
	if got, want := result(r.HostTargets(ctx, "simple.goqmail.test")), "no mail exchanger or address"; got != want {
		t.Errorf("HostTargets of an MX-only name = %q, want %q", got, want)
	}

	// The configuration path qmail programs use: resolv.conf names a
	// server that does not answer, control/dnsservers overrides it.
	t.Run("control/dnsservers", func(t *testing.T) {
		home := t.TempDir()
		if err := os.Mkdir(filepath.Join(home, "control"), 0o755); err != nil {
			t.Fatal(err)
		}
		resolv := filepath.Join(home, "resolv.conf")
		os.WriteFile(resolv, []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"), 0o644)
		os.WriteFile(filepath.Join(home, "control", "dnsservers"), []byte("# test nsd\n"+server+"\n"), 0o644)
		ctl, err := control.Open(home)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(ctl, resolv)
		if err != nil {
			t.Fatal(err)
		}
		got := result(New(cfg, Options{}).Targets(ctx, "simple.goqmail.test"))
		if want := "10 mail.goqmail.test 192.0.2.1, 10 mail.goqmail.test 2001:db8::1"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})

	names, err := r.LookupPTR(ctx, netip.MustParseAddr("192.0.2.2"))
	if err != nil || !slices.Equal(names, []string{"nomx.goqmail.test"}) {
		t.Errorf("LookupPTR = %q, %v", names, err)
	}
}
