package dns

import (
	"encoding/binary"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzReply feeds arbitrary bytes to the resolver as a server's reply to
// an MX, A, AAAA or PTR query, through the same checks and extraction a
// real reply goes through. The reply's own ID is taken as the query's so
// that fuzzing gets past the ID check.
func FuzzReply(f *testing.F) {
	seed := func(name string, qtype uint16, edit func(*mdns.Msg)) {
		q := new(mdns.Msg)
		q.SetQuestion(name, qtype)
		q.SetEdns0(DefaultEDNSSize, false)
		reply := testZone.answer(f, q)
		if edit != nil {
			edit(reply)
		}
		raw, err := reply.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(qtype, raw)
	}
	seed("mx.example.", mdns.TypeMX, nil)
	seed("alias.example.", mdns.TypeMX, nil)
	seed("loop1.example.", mdns.TypeA, nil)
	seed("absent.example.", mdns.TypeMX, nil)
	seed("nullmx.example.", mdns.TypeMX, nil)
	seed("mail.mx.example.", mdns.TypeAAAA, nil)
	seed("20.2.0.192.in-addr.arpa.", mdns.TypePTR, nil)
	seed("mx.example.", mdns.TypeMX, func(m *mdns.Msg) { m.Truncated = true })
	seed("mx.example.", mdns.TypeMX, func(m *mdns.Msg) { m.Rcode = mdns.RcodeFormatError })
	f.Fuzz(func(t *testing.T, qtype uint16, raw []byte) {
		switch qtype {
		case mdns.TypeA, mdns.TypeAAAA, mdns.TypeMX, mdns.TypePTR, mdns.TypeTXT:
		default:
			qtype = mdns.TypeMX
		}
		query := new(mdns.Msg)
		query.SetQuestion("mx.example.", qtype)
		if len(raw) >= 2 {
			query.Id = binary.BigEndian.Uint16(raw)
		}
		// Questions come back as the reply states them; take its
		// name when there is one so that extraction gets exercised.
		var probe mdns.Msg
		if probe.Unpack(raw) == nil && len(probe.Question) == 1 {
			query.Question[0].Name = probe.Question[0].Name
		}
		v, reply, reason := checkReply(query, raw)
		if v != verdictAnswer {
			if reply != nil || reason == nil {
				t.Fatalf("verdict %d with reply %v, reason %v", v, reply != nil, reason)
			}
			return
		}
		rs, err := extract(query.Question[0].Name, qtype, reply)
		if err != nil {
			return
		}
		if rs.hops > maxCNAMEHops {
			t.Fatalf("%d CNAME hops", rs.hops)
		}
		if rs.nxdomain && (len(rs.records) > 0 || rs.next != "") {
			t.Fatalf("NXDOMAIN with data: %+v", rs)
		}
		for _, rr := range rs.records {
			if rr.Header().Rrtype != qtype || !usable(rr) {
				t.Fatalf("unusable record kept: %v", rr)
			}
		}
		if rs.next != "" && !strings.HasSuffix(rs.next, ".") {
			t.Fatalf("relative CNAME target %q", rs.next)
		}
	})
}
