package testdns

import (
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestStartFake: the handler answers over UDP and, when asked, over TCP
// on the same port; it sees a query the library would refuse by default
// (two questions); and the sockets are closed when the test ends.
func TestStartFake(t *testing.T) {
	t.Parallel()
	for _, withTCP := range []bool{true, false} {
		var mu sync.Mutex
		var seen []string
		handler := mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
			proto := "udp"
			if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
				proto = "tcp"
			}
			mu.Lock()
			seen = append(seen, proto)
			mu.Unlock()
			m := new(mdns.Msg)
			m.SetReply(q)
			rr, _ := mdns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.53")
			m.Answer = append(m.Answer, rr)
			w.WriteMsg(m)
		})
		var addr string
		t.Run(map[bool]string{true: "udp+tcp", false: "udp"}[withTCP], func(t *testing.T) {
			addr = StartFake(t, handler, withTCP)
			networks := []string{"udp"}
			if withTCP {
				networks = append(networks, "tcp")
			}
			for _, network := range networks {
				c := &mdns.Client{Net: network, Timeout: 10 * time.Second}
				reply, _, err := c.Exchange(new(mdns.Msg).SetQuestion("host.t.test.", mdns.TypeA), addr)
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if len(reply.Answer) != 1 || reply.Answer[0].(*mdns.A).A.String() != "192.0.2.53" {
					t.Fatalf("%s: reply %v", network, reply)
				}
			}
			twoQuestions := new(mdns.Msg).SetQuestion("one.t.test.", mdns.TypeA)
			twoQuestions.Question = append(twoQuestions.Question, mdns.Question{Name: "two.t.test.", Qtype: mdns.TypeA, Qclass: mdns.ClassINET})
			reply, _, err := (&mdns.Client{Timeout: 10 * time.Second}).Exchange(twoQuestions, addr)
			if err != nil {
				t.Fatalf("two questions: %v", err)
			}
			if reply.Rcode != mdns.RcodeSuccess || len(reply.Answer) != 1 {
				t.Fatalf("two questions did not reach the handler: %v", reply)
			}
			mu.Lock()
			got := slices.Clone(seen)
			mu.Unlock()
			if want := append(networks, "udp"); !slices.Equal(got, want) {
				t.Fatalf("handler saw %q, want %q", got, want)
			}
		})
		// The subtest's cleanup has run: the port is free again. The
		// runtime closes a socket once the goroutine reading it has
		// returned, which may be just after Close: wait for it.
		free := func(listen func() (io.Closer, error)) error {
			var err error
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				var c io.Closer
				if c, err = listen(); err == nil {
					return c.Close()
				}
			}
			return err
		}
		if err := free(func() (io.Closer, error) { return net.ListenPacket("udp", addr) }); err != nil {
			t.Fatalf("UDP %s still held after the test: %v", addr, err)
		}
		if withTCP {
			if err := free(func() (io.Closer, error) { return net.Listen("tcp", addr) }); err != nil {
				t.Fatalf("TCP %s still held after the test: %v", addr, err)
			}
		}
	}
}
