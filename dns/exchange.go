package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	mdns "github.com/miekg/dns"
)

// maxMessage is the largest DNS message: TCP's two-byte length prefix
// cannot say more, and a UDP datagram of ours cannot carry more.
const maxMessage = 65535

// DefaultEDNSSize is the UDP payload size we advertise with EDNS0: the
// DNS Flag Day 2020 value, which avoids IP fragmentation. Anything larger
// comes over TCP.
const DefaultEDNSSize = 1232

// Exchange describes one query sent to one server, for Options.Trace.
type Exchange struct {
	Server string
	Name   string
	Type   uint16
	// TCP tells whether the query went over TCP (after a truncated UDP
	// reply).
	TCP bool
	// EDNS tells whether the query carried an EDNS0 OPT record.
	EDNS bool
	// Size is the length of the reply used, 0 when there was none.
	Size int
	// Err is why this exchange gave no usable reply, nil when it did.
	Err error
}

// exchangeServer asks one server one question, handling EDNS0 and
// truncation: a FORMERR/BADVERS reply to an EDNS0 query repeats it
// without EDNS0, a truncated UDP reply repeats it over TCP. The reply
// returned has passed checkReply (NOERROR or NXDOMAIN, our question).
func (r *Resolver) exchangeServer(ctx context.Context, server, name string, qtype uint16) (*mdns.Msg, error) {
	useEDNS := true
	for {
		query := new(mdns.Msg)
		query.Id = mdns.Id()
		query.RecursionDesired = true
		query.Question = []mdns.Question{{Name: name, Qtype: qtype, Qclass: mdns.ClassINET}}
		if useEDNS {
			query.SetEdns0(r.ednsSize, false)
		}
		packed, err := query.Pack()
		if err != nil {
			return nil, &badNameError{name: name, err: err}
		}
		v, reply, size, err := r.exchangeUDP(ctx, server, query, packed)
		r.trace(Exchange{Server: server, Name: name, Type: qtype, EDNS: useEDNS, Size: size, Err: err})
		if v == verdictTruncated {
			v, reply, size, err = r.exchangeTCP(ctx, server, query, packed)
			r.trace(Exchange{Server: server, Name: name, Type: qtype, TCP: true, EDNS: useEDNS, Size: size, Err: err})
		}
		switch v {
		case verdictAnswer:
			return reply, nil
		case verdictFormErr:
			if useEDNS {
				useEDNS = false
				continue
			}
		case verdictTruncated:
			err = errors.New("reply over TCP truncated")
		}
		return nil, fmt.Errorf("%s: %w", server, err)
	}
}

func (r *Resolver) trace(e Exchange) {
	if r.traceFunc != nil {
		r.traceFunc(e)
	}
}

// exchangeUDP sends packed over UDP and waits, until the timeout, for a
// datagram that checkReply accepts as our reply; stray, spoofed or
// malformed datagrams are dropped.
func (r *Resolver) exchangeUDP(ctx context.Context, server string, query *mdns.Msg, packed []byte) (verdict, *mdns.Msg, int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return verdictServerFailure, nil, 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if _, err := conn.Write(packed); err != nil {
		return verdictServerFailure, nil, 0, err
	}
	buf := make([]byte, maxMessage)
	lastReason := errors.New("no reply")
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil || isTimeout(err) {
				return verdictServerFailure, nil, 0, fmt.Errorf("timeout (%v)", lastReason)
			}
			// E.g. ECONNREFUSED from an ICMP port unreachable.
			return verdictServerFailure, nil, 0, err
		}
		v, reply, reason := checkReply(query, buf[:n])
		if v != verdictIgnore {
			return v, reply, n, reason
		}
		lastReason = reason
	}
}

// exchangeTCP sends packed over TCP (RFC 1035 4.2.2 framing) and reads
// one reply. Over TCP a reply that is not ours means a broken server.
func (r *Resolver) exchangeTCP(ctx context.Context, server string, query *mdns.Msg, packed []byte) (verdict, *mdns.Msg, int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return verdictServerFailure, nil, 0, fmt.Errorf("TCP: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	framed := make([]byte, 2+len(packed))
	binary.BigEndian.PutUint16(framed, uint16(len(packed)))
	copy(framed[2:], packed)
	if _, err := conn.Write(framed); err != nil {
		return verdictServerFailure, nil, 0, fmt.Errorf("TCP: %w", err)
	}
	var lenBuf [2]byte
	if _, err := io.ReadFull(conn, lenBuf[:]); err != nil {
		return verdictServerFailure, nil, 0, fmt.Errorf("TCP: reading reply length: %w", err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return verdictServerFailure, nil, 0, fmt.Errorf("TCP: reading reply: %w", err)
	}
	v, reply, reason := checkReply(query, buf)
	if v == verdictIgnore {
		return verdictServerFailure, nil, len(buf), fmt.Errorf("TCP: %w", reason)
	}
	return v, reply, len(buf), reason
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// badNameError reports a name that cannot be put in a query at all (a
// label over 63 bytes, a name over 255): no server could know it.
type badNameError struct {
	name string
	err  error
}

func (e *badNameError) Error() string { return fmt.Sprintf("bad domain name %q: %v", e.name, e.err) }
func (e *badNameError) Unwrap() error { return e.err }
