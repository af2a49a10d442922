package testdns

import (
	"bytes"
	"net"
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

const testZone = `$ORIGIN t.test.
$TTL 300
@ IN SOA ns.t.test. hostmaster.t.test. 1 3600 600 86400 60
@ IN NS ns
ns IN A 127.0.0.1
host IN A 192.0.2.7
`

// TestRecorderRelaysAndRecords: answers pass through the proxy
// unchanged over UDP and TCP, and every question is recorded, an
// unparseable one too.
func TestRecorderRelaysAndRecords(t *testing.T) {
	t.Parallel()
	nsd := StartNSD(t, Zone{Name: "t.test", Content: testZone})
	rec := NewRecorder(t, nsd)
	for _, network := range []string{"udp", "tcp"} {
		c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
		reply, _, err := c.Exchange(new(mdns.Msg).SetQuestion("host.t.test.", mdns.TypeA), rec.Addr())
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if len(reply.Answer) != 1 || reply.Answer[0].(*mdns.A).A.String() != "192.0.2.7" || !reply.Authoritative {
			t.Fatalf("%s: reply %v", network, reply)
		}
	}
	reply, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(new(mdns.Msg).SetQuestion("absent.t.test.", mdns.TypeMX), rec.Addr())
	if err != nil || reply.Rcode != mdns.RcodeNameError {
		t.Fatalf("NXDOMAIN through the proxy: %v, %v", reply, err)
	}
	conn, err := net.Dial("udp", rec.Addr())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("not a DNS message"))
	conn.Close()

	want := []Query{
		{Name: "host.t.test.", Type: mdns.TypeA},
		{Name: "host.t.test.", Type: mdns.TypeA, TCP: true},
		{Name: "absent.t.test.", Type: mdns.TypeMX},
		{},
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := rec.Queries()
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded %q, want %q", got, want)
		}
	}
}

// FuzzFraming: whatever a client sends, the TCP framing yields a message
// of exactly the announced length or an error, the message frames back
// to the same bytes, and recording it never panics.
func FuzzFraming(f *testing.F) {
	q, _ := new(mdns.Msg).SetQuestion("host.t.test.", mdns.TypeA).Pack()
	f.Add(append([]byte{0, byte(len(q))}, q...))
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, in []byte) {
		msg, err := readTCPMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(msg) == 0 || len(msg) != int(in[0])<<8|int(in[1]) {
			t.Fatalf("message of %d bytes from prefix %x", len(msg), in[:2])
		}
		var out bytes.Buffer
		if err := writeTCPMessage(&out, msg); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in[:2+len(msg)]) {
			t.Fatalf("reframed %x, want %x", out.Bytes(), in[:2+len(msg)])
		}
		(&Recorder{}).record(msg, true)
	})
}
