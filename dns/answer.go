package dns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	mdns "github.com/miekg/dns"
)

// verdict is what one message from a server means for the query we sent.
type verdict int

const (
	// verdictIgnore: not a reply to our query (too short, not a
	// response, wrong ID, wrong question, unparseable). Over UDP it is
	// dropped and we keep listening, so a spoofed or stray datagram
	// cannot decide anything; over TCP it makes the server a failure.
	verdictIgnore verdict = iota
	// verdictTruncated: our reply with the TC bit. Its content is never
	// used: the query is repeated over TCP.
	verdictTruncated
	// verdictFormErr: FORMERR or BADVERS, typically a server that does
	// not understand EDNS0; the query is repeated without it.
	verdictFormErr
	// verdictServerFailure: SERVFAIL, REFUSED, NOTIMP or any other
	// error code, or an answer about other names only (a lame or lying
	// server): the next server is asked.
	verdictServerFailure
	// verdictAnswer: NOERROR or NXDOMAIN for our question.
	verdictAnswer
)

// headerLen is the fixed size of a DNS message header.
const headerLen = 12

// Header flag bits (RFC 1035 4.1.1) read straight from the wire.
const (
	flagQR = 1 << 15
	flagTC = 1 << 9
)

// checkReply classifies raw, a message received from a server, as a reply
// to query. It returns the parsed message for verdictAnswer and a reason
// for every other verdict.
func checkReply(query *mdns.Msg, raw []byte) (verdict, *mdns.Msg, error) {
	if len(raw) < headerLen {
		return verdictIgnore, nil, errors.New("reply shorter than a DNS header")
	}
	if binary.BigEndian.Uint16(raw) != query.Id {
		return verdictIgnore, nil, errors.New("reply with a wrong ID")
	}
	flags := binary.BigEndian.Uint16(raw[2:])
	if flags&flagQR == 0 {
		return verdictIgnore, nil, errors.New("message is not a response")
	}
	reply := new(mdns.Msg)
	unpackErr := reply.Unpack(raw)
	if flags&flagTC != 0 {
		// A truncated reply may well fail to parse past the question;
		// only the question must be ours, when the server sent one.
		if len(reply.Question) > 0 && !sameQuestion(query.Question[0], reply.Question) {
			return verdictIgnore, nil, errors.New("truncated reply for another question")
		}
		return verdictTruncated, nil, errors.New("reply truncated")
	}
	if unpackErr != nil {
		return verdictIgnore, nil, fmt.Errorf("malformed reply: %w", unpackErr)
	}
	if reply.Opcode != mdns.OpcodeQuery {
		return verdictIgnore, nil, errors.New("reply with a wrong opcode")
	}
	switch reply.Rcode {
	case mdns.RcodeFormatError, mdns.RcodeBadVers:
		// Servers that choke on EDNS0 often answer without echoing
		// the question; accept that here only.
		if len(reply.Question) > 0 && !sameQuestion(query.Question[0], reply.Question) {
			return verdictIgnore, nil, errors.New("reply for another question")
		}
		return verdictFormErr, nil, fmt.Errorf("server answered %s", mdns.RcodeToString[reply.Rcode])
	}
	if !sameQuestion(query.Question[0], reply.Question) {
		return verdictIgnore, nil, errors.New("reply for another question")
	}
	switch reply.Rcode {
	case mdns.RcodeSuccess, mdns.RcodeNameError:
		return verdictAnswer, reply, nil
	}
	name, ok := mdns.RcodeToString[reply.Rcode]
	if !ok {
		name = fmt.Sprintf("rcode %d", reply.Rcode)
	}
	return verdictServerFailure, nil, fmt.Errorf("server answered %s", name)
}

// sameQuestion reports whether a reply's question section is exactly the
// question we asked (names compared case-insensitively).
func sameQuestion(asked mdns.Question, got []mdns.Question) bool {
	return len(got) == 1 &&
		got[0].Qtype == asked.Qtype &&
		got[0].Qclass == asked.Qclass &&
		strings.EqualFold(got[0].Name, asked.Name)
}

// rrset is the usable content of an answer to (name, type): what is cached
// and what lookups are built from.
type rrset struct {
	// records are the records of the asked type owned by the end of the
	// CNAME chain. They are shared through the cache: read only.
	records []mdns.RR
	// nxdomain: the name (or the end of its chain) does not exist.
	nxdomain bool
	// next is a CNAME target the answer did not resolve, to be asked
	// about next; "" when the answer is complete.
	next string
	// hops is the number of CNAMEs followed inside this answer.
	hops int
	// ttl is how long this may be cached, in seconds; 0 means not at
	// all.
	ttl uint32
}

// maxCNAMEHops bounds CNAME chains, inside one answer and across
// queries: qmail's dns_cname gave up after ten.
const maxCNAMEHops = 10

// errCNAMELoop reports a chain longer than maxCNAMEHops.
var errCNAMELoop = errors.New("CNAME chain too long or looping")

// errForeignAnswer reports an answer section that says nothing about the
// name asked: a lame or lying server.
var errForeignAnswer = errors.New("answer only about other names")

// extract takes from a checked answer to (qname, qtype) the records that
// belong to qname: records of qtype owned by qname, or by the end of the
// CNAME chain starting at qname. Records about any other name are
// ignored; an answer consisting only of those is errForeignAnswer.
func extract(qname string, qtype uint16, reply *mdns.Msg) (rrset, error) {
	var rs rrset
	ttl := ^uint32(0)
	cur := qname
	related := false
	for {
		for _, rr := range reply.Answer {
			h := rr.Header()
			if h.Class != mdns.ClassINET || !strings.EqualFold(h.Name, cur) {
				continue
			}
			related = true
			if h.Rrtype == qtype && usable(rr) {
				rs.records = append(rs.records, rr)
				ttl = min(ttl, h.Ttl)
			}
		}
		if len(rs.records) > 0 {
			break
		}
		target, cnameTTL, ok := findCNAME(reply.Answer, cur)
		if !ok {
			break
		}
		if rs.hops >= maxCNAMEHops {
			return rrset{}, errCNAMELoop
		}
		rs.hops++
		ttl = min(ttl, cnameTTL)
		cur = target
	}
	if len(reply.Answer) > 0 && !related {
		return rrset{}, errForeignAnswer
	}
	switch {
	case len(rs.records) > 0:
	case reply.Rcode == mdns.RcodeNameError:
		rs.nxdomain = true
		ttl = min(ttl, negativeTTL(reply))
	case rs.hops > 0:
		// The chain ends at a name the answer says nothing about
		// (an authoritative server does not chase CNAMEs out of its
		// zone): that name must be asked about.
		rs.next = cur
	default:
		ttl = min(ttl, negativeTTL(reply))
	}
	if ttl == ^uint32(0) {
		ttl = 0
	}
	rs.ttl = ttl
	return rs, nil
}

// findCNAME returns the target of the CNAME owned by name in rrs.
func findCNAME(rrs []mdns.RR, name string) (target string, ttl uint32, ok bool) {
	for _, rr := range rrs {
		if c, isCNAME := rr.(*mdns.CNAME); isCNAME &&
			c.Hdr.Class == mdns.ClassINET && strings.EqualFold(c.Hdr.Name, name) {
			return c.Target, c.Hdr.Ttl, true
		}
	}
	return "", 0, false
}

// usable filters records whose data a lookup can use; the parser hands
// back typed records, but their content is still the server's word.
func usable(rr mdns.RR) bool {
	switch r := rr.(type) {
	case *mdns.A:
		return r.A.To4() != nil
	case *mdns.AAAA:
		return len(r.AAAA) == 16 && r.AAAA.To4() == nil
	case *mdns.MX:
		return r.Mx != ""
	case *mdns.PTR:
		return r.Ptr != "" && r.Ptr != "."
	case *mdns.TXT:
		return true
	}
	return false
}

// negativeTTL is how long a "no such name" or "no such data" answer may be
// cached (RFC 2308 section 5): the smaller of the SOA record's TTL and its
// MINIMUM field; 0 without a SOA.
func negativeTTL(reply *mdns.Msg) uint32 {
	for _, rr := range reply.Ns {
		if soa, ok := rr.(*mdns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 0
}
