package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/goqmail/goqmail/internal/testdns"
	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsmtp"
)

// Sizes of the oversized answers, as in the dns package's nsd test: the
// medium MX answer is over 512 bytes but fits the 1232-byte EDNS0
// payload, the big MX answer and the TXT set are over 4096 bytes.
const (
	mediumMXCount = 14
	bigMXCount    = 100
	txtCount      = 200
)

func mediumMXHost(i int) string {
	return fmt.Sprintf("m%02d-exchanger-with-a-long-name-for-size.e2e.test", i)
}

func bigMXHost(i int) string {
	return fmt.Sprintf("h%03d-exchanger-with-a-much-longer-name-to-make-the-answer-big.e2e.test", i)
}

// remoteZones are the zones of the remote-path tests. Most exchangers
// are peerIP, where the test's SMTP peer listens on port 25; dead.e2e.test
// is deadIP, where nothing listens; self.e2e.test is this host;
// relay.e2e.test (no MX) is 127.0.0.1, for smtproutes with a port.
func remoteZones(peerIP, deadIP string) []testdns.Zone {
	var b strings.Builder
	fmt.Fprintf(&b, `$ORIGIN e2e.test.
$TTL 300
@ IN SOA ns.e2e.test. hostmaster.e2e.test. 1 3600 600 86400 60
@ IN NS ns
ns IN A 127.0.0.1
peer IN A %[1]s
relay IN A 127.0.0.1
simple IN MX 10 peer
nomx IN A %[1]s
txt IN MX 10 peer
chain1 IN CNAME chain2
chain2 IN CNAME chain3
chain3 IN MX 10 peer
away IN CNAME simple.other.test.
loop1 IN CNAME loop2
loop2 IN CNAME loop1
nullmx IN MX 0 .
noaddr IN MX 10 nowhere
nowhere IN TXT "exists, but has no address"
dead IN A %[2]s
self IN A 127.0.0.1
order IN MX 30 self
order IN MX 20 peer
order IN MX 10 dead
selfbest IN MX 10 self
selfbest IN MX 20 peer
deadonly IN MX 10 dead
`, peerIP, deadIP)
	for i := range mediumMXCount {
		fmt.Fprintf(&b, "medium IN MX %d %s.\n", 10*(i%3), mediumMXHost(i))
		fmt.Fprintf(&b, "%s. IN A %s\n", mediumMXHost(i), peerIP)
	}
	for i := range bigMXCount {
		fmt.Fprintf(&b, "big IN MX %d %s.\n", i%5, bigMXHost(i))
		fmt.Fprintf(&b, "%s. IN A %s\n", bigMXHost(i), peerIP)
	}
	for i := range txtCount {
		fmt.Fprintf(&b, "txt IN TXT \"record %03d %s\"\n", i, strings.Repeat("x", 200))
	}
	other := `$ORIGIN other.test.
$TTL 300
@ IN SOA ns.e2e.test. hostmaster.e2e.test. 1 3600 600 86400 60
@ IN NS ns.e2e.test.
simple IN MX 20 peer.e2e.test.
`
	return []testdns.Zone{{Name: "e2e.test", Content: b.String()}, {Name: "other.test", Content: other}}
}

// startRemoteDNS runs nsd with remoteZones behind a recording proxy. It
// returns nsd's address, for the test's own queries, and the proxy,
// which the programs under test are to ask.
func startRemoteDNS(t *testing.T, peerIP, deadIP string) (string, *testdns.Recorder) {
	t.Helper()
	nsd := testdns.StartNSD(t, remoteZones(peerIP, deadIP)...)
	return nsd, testdns.NewRecorder(t, nsd)
}

// checkAnswerSizes proves the oversized answers are what the test needs:
// the medium MX answer is truncated without EDNS0, the big MX answer and
// the TXT set even with a 4096-byte buffer.
func checkAnswerSizes(t *testing.T, server string) {
	t.Helper()
	truncated := func(name string, qtype uint16, edns uint16) bool {
		t.Helper()
		q := new(mdns.Msg).SetQuestion(name, qtype)
		if edns > 0 {
			q.SetEdns0(edns, false)
		}
		reply, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(q, server)
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		return reply.Truncated
	}
	if !truncated("medium.e2e.test.", mdns.TypeMX, 0) {
		t.Fatal("the medium MX answer fits 512 bytes: the test proves nothing")
	}
	if truncated("medium.e2e.test.", mdns.TypeMX, 1232) {
		t.Fatal("the medium MX answer does not fit a 1232-byte EDNS0 payload")
	}
	if !truncated("big.e2e.test.", mdns.TypeMX, 4096) {
		t.Fatal("the big MX answer fits 4096 bytes: the test proves nothing")
	}
	if !truncated("txt.e2e.test.", mdns.TypeTXT, 4096) {
		t.Fatal("the TXT set fits 4096 bytes: the test proves nothing")
	}
}

// checkQueryTypes fails if anything but MX, A and AAAA was asked: the
// remote path never asks for ANY or CNAME (Debian patch 0004), and
// nothing else either.
func checkQueryTypes(t *testing.T, queries []testdns.Query) {
	t.Helper()
	for _, q := range queries {
		switch q.Type {
		case mdns.TypeMX, mdns.TypeA, mdns.TypeAAAA:
		case mdns.TypeANY, mdns.TypeCNAME:
			t.Errorf("forbidden query: %s", q)
		default:
			t.Errorf("unexpected query: %s", q)
		}
	}
}

// asked reports whether queries hold one for name (in any case) and
// qtype over the given transport.
func asked(queries []testdns.Query, name string, qtype uint16, tcp bool) bool {
	return slices.ContainsFunc(queries, func(q testdns.Query) bool {
		return strings.EqualFold(q.Name, name) && q.Type == qtype && q.TCP == tcp
	})
}

// TestRemoteDNS runs the real qmail-remote against the real nsd, every
// mail exchanger being an SMTP peer on port 25 of a loopback address:
// oversized answers (UDP with EDNS0, TCP after truncation), CNAME chains
// and the failures each give qmail's report, and no ANY or CNAME query
// is ever sent.
func TestRemoteDNS(t *testing.T) {
	t.Parallel()
	testenv.Root(t)
	peer := startPeer(t, listenPort25(t), nil)
	nsd, dns := startRemoteDNS(t, peer.IP(), unusedPort25(t))
	checkAnswerSizes(t, nsd)
	home := testenv.NewHome(t)
	testenv.WriteControl(t, home, "dnsservers", dns.Addr()+"\n")

	accepted := "K" + peer.IP() + " accepted message.\nRemote host said: 250 2.0.0 OK: queued\n"
	tests := []struct {
		name   string
		host   string
		report string
	}{
		{"MX", "simple.e2e.test", accepted},
		{"no MX, an A record", "nomx.e2e.test", accepted},
		{"MX answer over 512 bytes", "medium.e2e.test", accepted},
		{"MX answer over 4096 bytes", "big.e2e.test", accepted},
		// Besides its MX, txt.e2e.test has a TXT set of over 40 KB,
		// which an ANY query would draw.
		{"huge TXT set", "txt.e2e.test", accepted},
		{"CNAME chain", "chain1.e2e.test", accepted},
		{"CNAME into another zone", "away.e2e.test", accepted},
		{"upper case", "SIMPLE.E2E.Test", accepted},
		{"CNAME loop", "loop1.e2e.test", "DSorry, I couldn't find any host named loop1.e2e.test. (#5.1.2)\n"},
		{"null MX", "nullmx.e2e.test", "DSorry, nullmx.e2e.test does not accept mail (it publishes a null MX). (#5.1.10)\n"},
		{"NXDOMAIN", "absent.e2e.test", "DSorry, I couldn't find any host named absent.e2e.test. (#5.1.2)\n"},
		{"exchanger without address", "noaddr.e2e.test", "DSorry, I couldn't find a mail exchanger or IP address. (#5.4.4)\n"},
		{"server refuses (not its zone)", "elsewhere.example", "ZSorry, I couldn't find any host by that name. (#4.1.2)\n"},
		// The best exchanger refuses connections, the next one takes
		// the message; this host's own (pref 30) is never tried.
		{"best MX down", "order.e2e.test", accepted},
		{"we are the best MX", "selfbest.e2e.test", "DSorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n"},
		{"no exchanger answers", "deadonly.e2e.test", "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(peer.Received())
			recipient := "user@" + tc.host
			msg := "Subject: " + tc.name + "\n\nto " + tc.host + "\n"
			reports := testsmtp.RunRemote(t, home, msg, tc.host, "sender@testhost.example", recipient)
			want := []string{tc.report}
			if strings.HasPrefix(tc.report, "K") {
				want = []string{"r", tc.report}
			}
			if !slices.Equal(reports, want) {
				t.Fatalf("reports %q, want %q", reports, want)
			}
			got := peer.Received()[before:]
			if tc.report != accepted {
				if len(got) != 0 {
					t.Fatalf("the peer got %+v", got)
				}
				return
			}
			wantData := strings.ReplaceAll(msg, "\n", "\r\n")
			if len(got) != 1 || got[0].From != "sender@testhost.example" || !slices.Equal(got[0].Rcpts, []string{recipient}) || got[0].Data != wantData {
				t.Fatalf("the peer got %+v", got)
			}
		})
	}

	queries := dns.Queries()
	checkQueryTypes(t, queries)
	for _, tc := range tests {
		name := mdns.Fqdn(tc.host)
		if !asked(queries, name, mdns.TypeMX, false) {
			t.Errorf("no MX query over UDP for %s", name)
		}
	}
	// The medium answer came by UDP thanks to EDNS0; the big one needed
	// TCP.
	if asked(queries, "medium.e2e.test.", mdns.TypeMX, true) {
		t.Error("the medium MX answer was fetched over TCP: EDNS0 is not in use")
	}
	if !asked(queries, "big.e2e.test.", mdns.TypeMX, true) {
		t.Error("the big MX answer was not fetched over TCP")
	}
}
