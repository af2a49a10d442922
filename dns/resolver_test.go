package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// testZone is the data the fake servers serve in the tests below.
var testZone = zone{
	"mx.example. 300 IN MX 10 mail.mx.example.",
	"mail.mx.example. 300 IN A 192.0.2.10",
	"mail.mx.example. 300 IN AAAA 2001:db8::10",
	"nomx.example. 300 IN A 192.0.2.20",
	"nullmx.example. 300 IN MX 0 .",
	"noaddr.example. 300 IN MX 10 nothing.example.",
	"nothing.example. 300 IN TXT \"no address here\"",
	"alias.example. 300 IN CNAME mx.example.",
	"loop1.example. 300 IN CNAME loop2.example.",
	"loop2.example. 300 IN CNAME loop1.example.",
	"20.2.0.192.in-addr.arpa. 300 IN PTR nomx.example.",
}

// result summarises what Targets gave, for table comparisons.
func result(targets []Target, err error) string {
	if err != nil {
		var de *Error
		if !errors.As(err, &de) {
			return "non-dns error: " + err.Error()
		}
		return de.Kind.String()
	}
	var parts []string
	for _, t := range targets {
		parts = append(parts, fmt.Sprintf("%d %s %s", t.Pref, t.Host, t.Addr))
	}
	return strings.Join(parts, ", ")
}

const mxExampleTargets = "10 mail.mx.example 192.0.2.10, 10 mail.mx.example 2001:db8::10"

// TestBrokenServers puts one scripted server in front of the resolver
// for each misbehaviour and checks the outcome documented in docs/dns.md.
func TestBrokenServers(t *testing.T) {
	t.Parallel()
	good := func(t *testing.T) replyFunc { return testZone.serve(t) }
	tests := []struct {
		name    string
		withTCP bool
		reply   func(t *testing.T) replyFunc
		domain  string
		want    string
	}{
		{"good", false, good, "mx.example", mxExampleTargets},
		{"nxdomain", false, good, "absent.example", "no such host"},
		{"null MX", false, good, "nullmx.example", "null MX"},
		{"MX without address", false, good, "noaddr.example", "no mail exchanger or address"},
		{"no MX: host's address", false, good, "nomx.example", "0 nomx.example 192.0.2.20"},
		{"CNAME followed", false, good, "alias.example", mxExampleTargets},
		{"CNAME loop", false, good, "loop1.example", "no such host"},
		{"truncated, no TCP service", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				m.Truncated = true
				m.Answer = nil
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"truncated, full answer over TCP", true, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				if !tcp {
					m.Truncated = true
					m.Answer = nil
				}
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", mxExampleTargets},
		{"truncated even over TCP", true, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				m.Truncated = true
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"wrong ID over TCP", true, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				if tcp {
					m.Id = q.Id + 1
				} else {
					m.Truncated = true
				}
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"truncated reply for another question", true, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				m.Truncated = true
				m.Question[0].Name = "other.example."
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"wrong ID only", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				m.Id = q.Id + 1
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"spoofed wrong ID before the real reply", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				spoof := new(mdns.Msg)
				spoof.SetReply(q)
				spoof.Id = q.Id ^ 0x5555
				spoof.Rcode = mdns.RcodeNameError
				return [][]byte{pack(t, spoof), pack(t, testZone.answer(t, q))}
			}
		}, "mx.example", mxExampleTargets},
		{"wrong question", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				m.Question[0].Name = "other.example."
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"wrong question type", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				m.Question[0].Qtype = mdns.TypeTXT
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"not a response", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				m.Response = false
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"garbage", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				raw := pack(t, testZone.answer(t, q))
				return [][]byte{raw[:len(raw)-3]}
			}
		}, "mx.example", "temporary failure"},
		{"SERVFAIL", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := new(mdns.Msg)
				m.SetRcode(q, mdns.RcodeServerFailure)
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"REFUSED (lame)", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := new(mdns.Msg)
				m.SetRcode(q, mdns.RcodeRefused)
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"FORMERR for EDNS0", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				if q.IsEdns0() != nil {
					m := new(mdns.Msg)
					m.SetRcode(q, mdns.RcodeFormatError)
					m.Question = nil
					return [][]byte{pack(t, m)}
				}
				return [][]byte{pack(t, testZone.answer(t, q))}
			}
		}, "mx.example", mxExampleTargets},
		{"FORMERR always", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := new(mdns.Msg)
				m.SetRcode(q, mdns.RcodeFormatError)
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"EDNS0 ignored", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				m.Extra = nil
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", mxExampleTargets},
		{"timeout", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte { return nil }
		}, "mx.example", "temporary failure"},
		{"records for another name only", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				for _, rr := range m.Answer {
					rr.Header().Name = "victim.example."
				}
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "temporary failure"},
		{"records for another name mixed in", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				bogus, _ := mdns.NewRR("victim.example. 300 IN A 198.51.100.66")
				bogusMX, _ := mdns.NewRR("victim.example. 300 IN MX 0 evil.example.")
				m.Answer = append(m.Answer, bogus, bogusMX)
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", mxExampleTargets},
		{"address records of the wrong type", false, func(t *testing.T) replyFunc {
			return func(q *mdns.Msg, tcp bool) [][]byte {
				m := testZone.answer(t, q)
				if q.Question[0].Qtype == mdns.TypeAAAA {
					a, _ := mdns.NewRR(q.Question[0].Name + " 300 IN A 198.51.100.66")
					m.Answer = []mdns.RR{a}
				}
				return [][]byte{pack(t, m)}
			}
		}, "mx.example", "10 mail.mx.example 192.0.2.10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := startFake(t, tc.withTCP, tc.reply(t))
			timeout := patient
			if tc.want == "temporary failure" {
				timeout = impatient
			}
			r := testResolver(timeout, Options{}, fs.addr)
			got := result(r.Targets(context.Background(), tc.domain))
			if got != tc.want {
				t.Errorf("Targets(%q) = %q, want %q\nqueries: %q", tc.domain, got, tc.want, fs.queries())
			}
			for _, q := range fs.queries() {
				if strings.Contains(q, " ANY ") || strings.Contains(q, " CNAME ") {
					t.Errorf("resolver asked %s", q)
				}
			}
		})
	}
}

// TestNextServer checks that a failing server hands over to the next one
// and that the failure kinds that should do so do.
func TestNextServer(t *testing.T) {
	t.Parallel()
	failures := map[string]replyFunc{
		"timeout": func(q *mdns.Msg, tcp bool) [][]byte { return nil },
		"SERVFAIL": func(q *mdns.Msg, tcp bool) [][]byte {
			m := new(mdns.Msg)
			m.SetRcode(q, mdns.RcodeServerFailure)
			raw, _ := m.Pack()
			return [][]byte{raw}
		},
		"foreign answer": func(q *mdns.Msg, tcp bool) [][]byte {
			m := new(mdns.Msg)
			m.SetReply(q)
			a, _ := mdns.NewRR("victim.example. 300 IN A 198.51.100.66")
			m.Answer = []mdns.RR{a}
			raw, _ := m.Pack()
			return [][]byte{raw}
		},
	}
	for name, fail := range failures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bad := startFake(t, false, fail)
			good := startFake(t, false, testZone.serve(t))
			r := testResolver(2*time.Second, Options{}, bad.addr, good.addr)
			if got := result(r.Targets(context.Background(), "mx.example")); got != mxExampleTargets {
				t.Errorf("got %q, want %q", got, mxExampleTargets)
			}
			if len(bad.queries()) == 0 {
				t.Error("the first server was never asked")
			}
		})
	}
}

// TestTCPFallbackTrace checks through Trace that a truncated reply leads
// to a TCP query, and a FORMERR to a query without EDNS0.
func TestTCPFallbackTrace(t *testing.T) {
	t.Parallel()
	fs := startFake(t, true, func(q *mdns.Msg, tcp bool) [][]byte {
		if q.IsEdns0() != nil {
			m := new(mdns.Msg)
			m.SetRcode(q, mdns.RcodeFormatError)
			raw, _ := m.Pack()
			return [][]byte{raw}
		}
		m := testZone.answer(t, q)
		m.Truncated = !tcp
		return [][]byte{pack(t, m)}
	})
	var mu sync.Mutex
	var steps []string
	r := testResolver(patient, Options{Trace: func(e Exchange) {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, fmt.Sprintf("tcp=%v edns=%v ok=%v", e.TCP, e.EDNS, e.Err == nil))
	}}, fs.addr)
	mxs, err := r.LookupMX(context.Background(), "mx.example")
	if err != nil || len(mxs) != 1 {
		t.Fatalf("LookupMX = %v, %v", mxs, err)
	}
	want := []string{"tcp=false edns=true ok=false", "tcp=false edns=false ok=false", "tcp=true edns=false ok=true"}
	if !reflect.DeepEqual(steps, want) {
		t.Errorf("exchanges %q, want %q", steps, want)
	}
}

// TestSoftExchanger: one exchanger's address lookups fail temporarily,
// another's work: qmail went on with the addresses it had.
func TestSoftExchanger(t *testing.T) {
	t.Parallel()
	z := zone{
		"two.example. 300 IN MX 10 broken.example.",
		"two.example. 300 IN MX 20 fine.example.",
		"fine.example. 300 IN A 192.0.2.30",
	}
	fs := startFake(t, false, func(q *mdns.Msg, tcp bool) [][]byte {
		if q.Question[0].Name == "broken.example." {
			return nil
		}
		return [][]byte{pack(t, z.answer(t, q))}
	})
	r := testResolver(2*time.Second, Options{}, fs.addr)
	if got, want := result(r.Targets(context.Background(), "two.example")), "20 fine.example 192.0.2.30"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := result(r.Targets(context.Background(), "broken.example")), "temporary failure"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestMXOrder checks preference order and that equal preferences are
// ordered by the injected randomness.
func TestMXOrder(t *testing.T) {
	t.Parallel()
	z := zone{
		"order.example. 300 IN MX 20 c.example.",
		"order.example. 300 IN MX 10 a.example.",
		"order.example. 300 IN MX 10 b.example.",
		"order.example. 300 IN MX 5 first.example.",
		"a.example. 300 IN A 192.0.2.1",
		"b.example. 300 IN A 192.0.2.2",
		"c.example. 300 IN A 192.0.2.3",
		"first.example. 300 IN A 192.0.2.4",
	}
	fs := startFake(t, false, z.serve(t))
	hosts := func(random func(int) int) string {
		r := testResolver(patient, Options{Random: random, DisableIPv6: true}, fs.addr)
		targets, err := r.Targets(context.Background(), "order.example")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tg := range targets {
			names = append(names, tg.Host)
		}
		return strings.Join(names, " ")
	}
	keep := func(n int) int { return n - 1 } // Fisher-Yates swaps i with i
	swap := func(n int) int { return 0 }
	if got, want := hosts(keep), "first.example a.example b.example c.example"; got != want {
		t.Errorf("keeping order: %q, want %q", got, want)
	}
	if got, want := hosts(swap), "first.example b.example a.example c.example"; got != want {
		t.Errorf("swapping: %q, want %q", got, want)
	}
}

// TestDisableIPv6 checks that no AAAA query is sent when IPv6 is off.
func TestDisableIPv6(t *testing.T) {
	t.Parallel()
	fs := startFake(t, false, testZone.serve(t))
	r := testResolver(patient, Options{DisableIPv6: true}, fs.addr)
	if got, want := result(r.Targets(context.Background(), "mx.example")), "10 mail.mx.example 192.0.2.10"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, q := range fs.queries() {
		if strings.Contains(q, "AAAA") {
			t.Errorf("asked %s with IPv6 off", q)
		}
	}
	if _, err := r.Targets(context.Background(), "[IPv6:2001:db8::1]"); err == nil {
		t.Error("IPv6 literal accepted with IPv6 off")
	}
}

func TestLiterals(t *testing.T) {
	t.Parallel()
	// No server at all: literals must not need one.
	r := testResolver(impatient, Options{}, "127.0.0.1:1")
	tests := []struct{ host, want string }{
		{"192.0.2.7", "0 192.0.2.7 192.0.2.7"},
		{"[192.0.2.7]", "0 [192.0.2.7] 192.0.2.7"},
		{"[IPv6:2001:db8::7]", "0 [IPv6:2001:db8::7] 2001:db8::7"},
		{"[2001:db8::7]", "0 [2001:db8::7] 2001:db8::7"},
		{"[not an address]", "no such host"},
	}
	for _, tc := range tests {
		if got := result(r.Targets(context.Background(), tc.host)); got != tc.want {
			t.Errorf("Targets(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	fs := startFake(t, false, testZone.serve(t))
	r := testResolver(patient, Options{}, fs.addr)
	for _, host := range []string{"", ".", "a..example", strings.Repeat("x", 64) + ".example", strings.Repeat("abcdefghi.", 30) + "example"} {
		if got := result(r.Targets(context.Background(), host)); got != "no such host" {
			t.Errorf("Targets(%q) = %q, want no such host", host, got)
		}
	}
	if q := fs.queries(); len(q) != 0 {
		t.Errorf("bad names were sent: %q", q)
	}
}

func TestPTRAndTXT(t *testing.T) {
	t.Parallel()
	fs := startFake(t, false, testZone.serve(t))
	r := testResolver(patient, Options{}, fs.addr)
	names, err := r.LookupPTR(context.Background(), netip.MustParseAddr("192.0.2.20"))
	if err != nil || !slices.Equal(names, []string{"nomx.example"}) {
		t.Errorf("LookupPTR = %q, %v", names, err)
	}
	var de *Error
	if _, err := r.LookupPTR(context.Background(), netip.MustParseAddr("192.0.2.99")); !errors.As(err, &de) || de.Kind != NotFound {
		t.Errorf("LookupPTR of an unknown address: %v, want NotFound", err)
	}
	txt, err := r.LookupTXT(context.Background(), "nothing.example")
	if err != nil || !slices.Equal(txt, []string{"no address here"}) {
		t.Errorf("LookupTXT = %q, %v", txt, err)
	}
}

// TestCache checks that answers are reused until their TTL runs out,
// negative answers too, and that concurrent lookups share one query.
func TestCache(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var blockOnce sync.Once
	fs := startFake(t, false, func(q *mdns.Msg, tcp bool) [][]byte {
		// Hold the first query until every lookup has started, so
		// that they really are concurrent.
		blockOnce.Do(func() { <-release })
		return [][]byte{pack(t, testZone.answer(t, q))}
	})
	now := time.Unix(1_700_000_000, 0)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	r := New(Config{Servers: []string{fs.addr}, Timeout: 5 * time.Second, Attempts: 1}, Options{Now: clock, DisableIPv6: true})

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := r.LookupMX(context.Background(), "mx.example"); err != nil {
				errs <- err
			}
		})
	}
	// Wait until the server has the query, then let it answer.
	for len(fs.queries()) == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	count := func() int { return len(fs.queries()) }
	if n := count(); n != 1 {
		t.Errorf("20 concurrent lookups sent %d queries, want 1", n)
	}
	r.LookupMX(context.Background(), "MX.Example.")
	if n := count(); n != 1 {
		t.Errorf("cached lookup sent a query (%d in all)", n)
	}
	advance(301 * time.Second)
	r.LookupMX(context.Background(), "mx.example")
	if n := count(); n != 2 {
		t.Errorf("after the TTL: %d queries, want 2", n)
	}
	// NXDOMAIN is cached for min(SOA TTL, SOA minimum) = 60 s.
	r.LookupMX(context.Background(), "absent.example")
	r.LookupMX(context.Background(), "absent.example")
	if n := count(); n != 3 {
		t.Errorf("negative answer not cached: %d queries, want 3", n)
	}
	advance(61 * time.Second)
	r.LookupMX(context.Background(), "absent.example")
	if n := count(); n != 4 {
		t.Errorf("negative answer cached too long: %d queries, want 4", n)
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	c := newCache(3)
	now := time.Unix(0, 0)
	for i := range 10 {
		c.put(cacheKey{name: fmt.Sprint(i), qtype: 1}, rrset{ttl: 60}, now)
	}
	if c.len() != 3 {
		t.Errorf("cache holds %d entries, want 3", c.len())
	}
	if _, ok := c.get(cacheKey{name: "9", qtype: 1}, now); !ok {
		t.Error("newest entry evicted")
	}
	if _, ok := c.get(cacheKey{name: "0", qtype: 1}, now); ok {
		t.Error("oldest entry kept")
	}
	c.put(cacheKey{name: "zero", qtype: 1}, rrset{ttl: 0}, now)
	if _, ok := c.get(cacheKey{name: "zero", qtype: 1}, now); ok {
		t.Error("zero TTL cached")
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	a := startFake(t, false, testZone.serve(t))
	b := startFake(t, false, testZone.serve(t))
	r := New(Config{Servers: []string{a.addr, b.addr}, Timeout: time.Second, Attempts: 1, Rotate: true}, Options{CacheSize: -1})
	for range 4 {
		if _, err := r.LookupMX(context.Background(), "mx.example"); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.queries()) != 2 || len(b.queries()) != 2 {
		t.Errorf("rotation: %d and %d queries, want 2 and 2", len(a.queries()), len(b.queries()))
	}
}

func TestCanceled(t *testing.T) {
	t.Parallel()
	fs := startFake(t, false, testZone.serve(t))
	r := testResolver(patient, Options{}, fs.addr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := result(r.Targets(ctx, "mx.example")); got != "temporary failure" {
		t.Errorf("canceled lookup: %q, want temporary failure", got)
	}
}

func TestNeverAsksCNAMEOrANY(t *testing.T) {
	t.Parallel()
	r := testResolver(impatient, Options{}, "127.0.0.1:1")
	for _, qtype := range []uint16{mdns.TypeANY, mdns.TypeCNAME} {
		if _, err := r.resolve(context.Background(), "example.org", qtype); err == nil {
			t.Errorf("type %s was asked", mdns.TypeToString[qtype])
		}
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err       Error
		permanent bool
		want      string
	}{
		{Error{Kind: Temporary, Host: "x.example"}, false, "Sorry, I couldn't find any host by that name. (#4.1.2)"},
		{Error{Kind: NotFound, Host: "x.exa mple\n"}, true, "Sorry, I couldn't find any host named x.exa?mple?. (#5.1.2)"},
		{Error{Kind: NoAddress, Host: "x.example"}, true, "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)"},
		{Error{Kind: NullMX, Host: "x.example"}, true, "Sorry, x.example does not accept mail (it publishes a null MX). (#5.1.10)"},
	}
	for _, tc := range tests {
		if got := tc.err.Report(); got != tc.want {
			t.Errorf("%v: Report() = %q, want %q", tc.err.Kind, got, tc.want)
		}
		if tc.err.Permanent() != tc.permanent {
			t.Errorf("%v: Permanent() = %v", tc.err.Kind, !tc.permanent)
		}
	}
}

// TestExchangerLimit: a domain listing hundreds of exchangers costs at
// most maxExchangers address lookups, the best preferences kept.
func TestExchangerLimit(t *testing.T) {
	t.Parallel()
	var z zone
	for i := range 200 {
		z = append(z, fmt.Sprintf("many.example. 300 IN MX %d h%d.example.", 1000-i, i),
			fmt.Sprintf("h%d.example. 300 IN A 192.0.2.1", i))
	}
	rrs := z.records(t)
	fs := startFake(t, true, func(q *mdns.Msg, tcp bool) [][]byte {
		reply := new(mdns.Msg)
		reply.SetReply(q)
		for _, rr := range rrs {
			if rr.Header().Name == q.Question[0].Name && rr.Header().Rrtype == q.Question[0].Qtype {
				reply.Answer = append(reply.Answer, rr)
			}
		}
		reply.Truncated = !tcp && len(reply.Answer) > 20
		return [][]byte{pack(t, reply)}
	})
	r := testResolver(patient, Options{DisableIPv6: true}, fs.addr)
	targets, err := r.Targets(context.Background(), "many.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != maxExchangers {
		t.Fatalf("%d targets, want %d", len(targets), maxExchangers)
	}
	if targets[0].Host != "h199.example" || targets[len(targets)-1].Pref != 1000-200+maxExchangers {
		t.Errorf("kept the wrong exchangers: first %+v, last %+v", targets[0], targets[len(targets)-1])
	}
}
