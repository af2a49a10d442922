package dns

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/goqmail/goqmail/internal/testdns"
)

// fakeServer is a DNS server inside the test process, on 127.0.0.1 with
// an ephemeral port, whose replies a test scripts, broken ones included.
type fakeServer struct {
	addr string
	mu   sync.Mutex
	// seen records every query received: "udp MX example.org." etc.
	seen []string
}

// replyFunc decides the raw messages sent back for one query; nil or
// empty means silence.
type replyFunc func(q *mdns.Msg, tcp bool) [][]byte

// startFake serves udp (and tcp, when withTCP) with reply.
func startFake(t *testing.T, withTCP bool, reply replyFunc) *fakeServer {
	t.Helper()
	fs := &fakeServer{}
	handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		proto := "udp"
		if tcp {
			proto = "tcp"
		}
		if len(q.Question) == 1 {
			fs.mu.Lock()
			fs.seen = append(fs.seen, proto+" "+mdns.TypeToString[q.Question[0].Qtype]+" "+q.Question[0].Name)
			fs.mu.Unlock()
		}
		for _, raw := range reply(q, tcp) {
			w.Write(raw)
		}
	})
	fs.addr = testdns.StartFake(t, handler, withTCP)
	return fs
}

func (fs *fakeServer) queries() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.seen...)
}

// zone is a tiny authoritative data set in presentation format, one
// record a line. Names absent from it are NXDOMAIN; present names
// without the asked type are NODATA with a SOA for negative caching.
type zone []string

func (z zone) answer(t testing.TB, q *mdns.Msg) *mdns.Msg {
	reply := new(mdns.Msg)
	reply.SetReply(q)
	question := q.Question[0]
	name := question.Name
	for hop := 0; hop < 20; hop++ {
		var cname mdns.RR
		found := false
		for _, rr := range z.records(t) {
			if !strings.EqualFold(rr.Header().Name, name) {
				continue
			}
			switch rr.Header().Rrtype {
			case question.Qtype:
				reply.Answer = append(reply.Answer, rr)
				found = true
			case mdns.TypeCNAME:
				cname = rr
			}
		}
		if found || cname == nil {
			break
		}
		reply.Answer = append(reply.Answer, cname)
		name = cname.(*mdns.CNAME).Target
	}
	if !z.has(t, name) {
		reply.Rcode = mdns.RcodeNameError
	}
	if len(reply.Answer) == 0 || reply.Rcode == mdns.RcodeNameError {
		soa, _ := mdns.NewRR("example. 300 IN SOA ns.example. host.example. 1 3600 600 86400 60")
		reply.Ns = append(reply.Ns, soa)
	}
	if opt := q.IsEdns0(); opt != nil {
		reply.SetEdns0(opt.UDPSize(), false)
	}
	return reply
}

func (z zone) records(t testing.TB) []mdns.RR {
	var rrs []mdns.RR
	for _, line := range z {
		rr, err := mdns.NewRR(line)
		if err != nil {
			t.Errorf("bad test record %q: %v", line, err)
			continue
		}
		rrs = append(rrs, rr)
	}
	return rrs
}

func (z zone) has(t testing.TB, name string) bool {
	for _, rr := range z.records(t) {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// serve answers every query from z.
func (z zone) serve(t *testing.T) replyFunc {
	return func(q *mdns.Msg, tcp bool) [][]byte {
		return [][]byte{pack(t, z.answer(t, q))}
	}
}

func pack(t testing.TB, m *mdns.Msg) []byte {
	raw, err := m.Pack()
	if err != nil {
		t.Errorf("packing test reply: %v", err)
	}
	return raw
}

// testResolver asks servers with one attempt and the given timeout;
// the cache is off unless opts says otherwise. Tests expecting an answer
// use a generous timeout so that a loaded machine cannot fail them.
func testResolver(timeout time.Duration, opts Options, servers ...string) *Resolver {
	if opts.CacheSize == 0 {
		opts.CacheSize = -1
	}
	return New(Config{Servers: servers, Timeout: timeout, Attempts: 1}, opts)
}

// Timeouts for testResolver.
const (
	patient = 10 * time.Second
	// impatient is for lookups that must fail anyway.
	impatient = 300 * time.Millisecond
)
