// Package testdns runs real DNS servers for tests: the authoritative
// server nsd (Debian package nsd) serving zones a test writes, and a
// recording proxy that lists every query a program under test sends.
package testdns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// Zone is one zone nsd serves: Name is its origin without the final dot
// ("example.test"), Content the zone file.
type Zone struct {
	Name    string
	Content string
}

// NSDPath finds nsd (Debian package nsd). In CI a missing nsd fails the
// test; elsewhere it skips it.
func NSDPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"nsd", "/usr/sbin/nsd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nsd not installed (Debian package nsd)")
	}
	t.Skip("nsd not installed (Debian package nsd)")
	return ""
}

// StartNSD runs nsd in the foreground on 127.0.0.1 with a free port
// (UDP and TCP) serving zones, and returns "127.0.0.1:port". nsd is
// stopped when the test ends. A name outside the zones gets REFUSED.
func StartNSD(t testing.TB, zones ...Zone) string {
	t.Helper()
	nsd := NSDPath(t)
	dir := t.TempDir()
	for i, z := range zones {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("zone%d", i)), []byte(z.Content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		addr, err := runNSD(t, nsd, dir, port, zones)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatalf("starting nsd: %v", lastErr)
	return ""
}

// freePort finds a port free for both UDP and TCP on 127.0.0.1. nsd
// cannot be told to pick one itself; if another process takes the port
// before nsd binds it, StartNSD tries another.
func freePort() (int, error) {
	for {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port, nil
		}
	}
}

func runNSD(t testing.TB, nsd, dir string, port int, zones []Zone) (string, error) {
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
  ip-address: 127.0.0.1@%[2]d
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "%[1]s"
  database: ""
  pidfile: "%[1]s/nsd.pid"
  xfrdfile: "%[1]s/xfrd.state"
  zonelistfile: "%[1]s/zone.list"
  logfile: "%[1]s/nsd.log"
  server-count: 1
  verbosity: 1
remote-control:
  control-enable: no
`, dir, port)
	for i, z := range zones {
		fmt.Fprintf(&conf, "zone:\n  name: %q\n  zonefile: \"zone%d\"\n", z.Name, i)
	}
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nsd, "-d", "-c", confPath)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// nsd answers once it has loaded every zone: probe the last one's SOA.
	probeZone := "."
	if len(zones) > 0 {
		probeZone = mdns.Fqdn(zones[len(zones)-1].Name)
	}
	client := &mdns.Client{Timeout: 200 * time.Millisecond}
	probe := new(mdns.Msg).SetQuestion(probeZone, mdns.TypeSOA)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
			return "", fmt.Errorf("nsd exited: %v\n%s%s", err, out.String(), log)
		default:
		}
		if reply, _, err := client.Exchange(probe, addr); err == nil && reply.Rcode == mdns.RcodeSuccess && reply.Authoritative {
			t.Cleanup(stop)
			return addr, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
	return "", fmt.Errorf("nsd did not answer\n%s%s", out.String(), log)
}

// Query is one query the Recorder saw. An unparseable query has Type 0
// and an empty Name.
type Query struct {
	Name string // as asked, with the final dot
	Type uint16
	TCP  bool
}

func (q Query) String() string {
	proto := "udp"
	if q.TCP {
		proto = "tcp"
	}
	return proto + " " + mdns.Type(q.Type).String() + " " + q.Name
}

// Recorder is a DNS proxy on 127.0.0.1 (UDP and TCP on one port) that
// forwards every query unchanged to an upstream server, relays the
// reply unchanged, and remembers the question.
type Recorder struct {
	addr     string
	upstream string
	mu       sync.Mutex
	queries  []Query
	// conns are the open TCP connections, closed when the test ends.
	conns map[net.Conn]bool
}

// maxMessage is the largest DNS message (a TCP length prefix is 16 bits).
const maxMessage = 65535

// relayTimeout bounds one exchange with the upstream server.
const relayTimeout = 10 * time.Second

// NewRecorder starts a recording proxy in front of upstream ("ip:port");
// it stops when the test ends.
func NewRecorder(t testing.TB, upstream string) *Recorder {
	t.Helper()
	r := &Recorder{upstream: upstream, conns: map[net.Conn]bool{}}
	pc, ln := listenUDPAndTCP(t, true)
	r.addr = pc.LocalAddr().String()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.serveUDP(pc, &wg) }()
	go func() { defer wg.Done(); r.serveTCP(ln, &wg) }()
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		wg.Wait()
	})
	return r
}

// Addr is the proxy's "127.0.0.1:port", for control/dnsservers.
func (r *Recorder) Addr() string { return r.addr }

// Queries returns the queries seen so far, in arrival order.
func (r *Recorder) Queries() []Query {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Query(nil), r.queries...)
}

func (r *Recorder) record(msg []byte, tcp bool) {
	q := Query{TCP: tcp}
	var m mdns.Msg
	if err := m.Unpack(msg); err == nil && len(m.Question) == 1 {
		q.Name, q.Type = m.Question[0].Name, m.Question[0].Qtype
	}
	r.mu.Lock()
	r.queries = append(r.queries, q)
	r.mu.Unlock()
}

func (r *Recorder) serveUDP(pc net.PacketConn, wg *sync.WaitGroup) {
	buf := make([]byte, maxMessage)
	for {
		n, client, err := pc.ReadFrom(buf)
		if err != nil {
			return // closed at the end of the test
		}
		query := append([]byte(nil), buf[:n]...)
		r.record(query, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			up, err := net.Dial("udp", r.upstream)
			if err != nil {
				return
			}
			defer up.Close()
			up.SetDeadline(time.Now().Add(relayTimeout))
			if _, err := up.Write(query); err != nil {
				return
			}
			reply := make([]byte, maxMessage)
			n, err := up.Read(reply)
			if err != nil {
				return
			}
			pc.WriteTo(reply[:n], client)
		}()
	}
}

func (r *Recorder) serveTCP(ln net.Listener, wg *sync.WaitGroup) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return // closed at the end of the test
		}
		r.mu.Lock()
		r.conns[conn] = true
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.relayTCP(conn)
			conn.Close()
			r.mu.Lock()
			delete(r.conns, conn)
			r.mu.Unlock()
		}()
	}
}

// relayTCP forwards the length-prefixed queries of one client connection
// over one upstream connection.
func (r *Recorder) relayTCP(conn net.Conn) {
	var up net.Conn
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	for {
		conn.SetDeadline(time.Now().Add(relayTimeout))
		query, err := readTCPMessage(conn)
		if err != nil {
			return
		}
		r.record(query, true)
		if up == nil {
			if up, err = net.Dial("tcp", r.upstream); err != nil {
				return
			}
		}
		up.SetDeadline(time.Now().Add(relayTimeout))
		if err := writeTCPMessage(up, query); err != nil {
			return
		}
		reply, err := readTCPMessage(up)
		if err != nil {
			return
		}
		if err := writeTCPMessage(conn, reply); err != nil {
			return
		}
	}
}

// readTCPMessage reads one length-prefixed DNS message (RFC 1035 4.2.2).
func readTCPMessage(c io.Reader) ([]byte, error) {
	var size [2]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(size[:])
	if n == 0 {
		return nil, errors.New("empty DNS message")
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(c, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// writeTCPMessage writes msg with its length prefix, in one write.
func writeTCPMessage(c io.Writer, msg []byte) error {
	if len(msg) > maxMessage {
		return fmt.Errorf("DNS message of %d bytes", len(msg))
	}
	buf := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	copy(buf[2:], msg)
	_, err := c.Write(buf)
	return err
}
