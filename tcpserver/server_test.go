package tcpserver

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goqmail/goqmail/control/cdb"
)

// writeRules makes a tcprules cdb from key → value pairs (values in
// tcprules' encoded form: NUL-ended entries).
func writeRules(t *testing.T, path string, rules map[string]string) {
	t.Helper()
	err := cdb.WriteFile(path, func(w *cdb.Writer) error {
		for k, v := range rules {
			if err := w.Add([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startServer runs srv on a fresh 127.0.0.1 listener until the test ends
// and returns its address and a function that stops it and waits.
func startServer(t *testing.T, srv *Server) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, []net.Listener{ln}) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// envHandler writes the connection's environment, sorted, to the client.
func envHandler(conn net.Conn, env map[string]string) {
	io.WriteString(conn, strings.Join(EnvList(env), "\n")+"\n")
}

func readEnv(t *testing.T, addr string) map[string]string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	return EnvMap(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
}

func TestServerEnviron(t *testing.T) {
	t.Parallel()
	srv := &Server{
		LocalHost: "mx.example",
		BaseEnv:   []string{"PATH=/bin", "TCPREMOTEHOST=forged.example", "TCPREMOTEINFO=forged", "TCPLOCALHOST=old", "KEEP=1"},
		Handler:   envHandler,
	}
	addr, _ := startServer(t, srv)
	env := readEnv(t, addr)
	_, port, _ := net.SplitHostPort(addr)
	want := map[string]string{
		"PATH": "/bin", "KEEP": "1", "PROTO": "TCP", "TCPLOCALHOST": "mx.example",
		"TCPLOCALIP": "127.0.0.1", "TCPLOCALPORT": port, "TCPREMOTEIP": "127.0.0.1",
	}
	remotePort := env["TCPREMOTEPORT"]
	delete(env, "TCPREMOTEPORT")
	if !reflect.DeepEqual(env, want) {
		t.Errorf("environment %v, want %v", env, want)
	}
	if remotePort == "" || remotePort == "0" {
		t.Errorf("TCPREMOTEPORT %q", remotePort)
	}
}

func TestServerRules(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	var logMu sync.Mutex
	rules := filepath.Join(t.TempDir(), "rules.cdb")
	writeRules(t, rules, map[string]string{
		"127.0.0.1": "+RELAYCLIENT=\x00+QMAILQUEUE=bin/filter\x00+TCPLOCALHOST=rule.example\x00",
	})
	srv := &Server{
		RulesPath: rules,
		LocalHost: "mx.example",
		Log:       lockedWriter{&logMu, &log},
		Name:      "test",
		Handler:   envHandler,
	}
	addr, _ := startServer(t, srv)
	env := readEnv(t, addr)
	for k, v := range map[string]string{"RELAYCLIENT": "", "QMAILQUEUE": "bin/filter", "TCPLOCALHOST": "rule.example"} {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
		}
	}

	// The cdb is reopened for each connection: a deny rule for the
	// prefix now closes the connection without a byte.
	writeRules(t, rules, map[string]string{"127.0.": "D\x00", "": "+X=1\x00"})
	if env := readEnv(t, addr); env != nil {
		t.Errorf("denied client got %v", env)
	}
	// An unreadable cdb drops the connection too.
	if err := os.Remove(rules); err != nil {
		t.Fatal(err)
	}
	if env := readEnv(t, addr); env != nil {
		t.Errorf("client served without readable rules: %v", env)
	}
	logMu.Lock()
	got := log.String()
	logMu.Unlock()
	if !strings.Contains(got, "test: deny 127.0.0.1\n") || !strings.Contains(got, "test: unable to read rules, dropping 127.0.0.1: ") {
		t.Errorf("log:\n%s", got)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// countingListener hands out net.Pipe connections and records, at each
// Accept, how many of the connections it gave are still being served.
type countingListener struct {
	mu          sync.Mutex
	outstanding int
	maxSeen     int
	conns       chan net.Conn
	closed      chan struct{}
	closeOnce   sync.Once
}

func (l *countingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.maxSeen = max(l.maxSeen, l.outstanding)
	l.mu.Unlock()
	select {
	case c := <-l.conns:
		l.mu.Lock()
		l.outstanding++
		l.mu.Unlock()
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *countingListener) done() {
	l.mu.Lock()
	l.outstanding--
	l.mu.Unlock()
}

func (l *countingListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *countingListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 25} }

// TestServerMaxConns: with a limit of 2, Accept is never called while two
// connections are being served, and every client is served in the end.
func TestServerMaxConns(t *testing.T) {
	t.Parallel()
	const clients = 6
	ln := &countingListener{conns: make(chan net.Conn, clients), closed: make(chan struct{})}
	started := make(chan int, clients)
	release := make([]chan struct{}, clients)
	for i := range release {
		release[i] = make(chan struct{})
	}
	var clientEnds []net.Conn
	for range clients {
		server, client := net.Pipe()
		ln.conns <- server
		clientEnds = append(clientEnds, client)
	}
	var served sync.WaitGroup
	served.Add(clients)
	var mu sync.Mutex
	next := 0
	srv := &Server{MaxConns: 2, Handler: func(conn net.Conn, env map[string]string) {
		defer served.Done()
		defer ln.done()
		mu.Lock()
		i := next
		next++
		mu.Unlock()
		started <- i
		<-release[i]
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, []net.Listener{ln}) }()
	// Release the handlers one at a time, in the order they started.
	for range clients {
		close(release[<-started])
	}
	served.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range clientEnds {
		c.Close()
	}
	if ln.maxSeen >= 2 {
		t.Errorf("Accept called with %d connections in service, limit 2", ln.maxSeen)
	}
}

// TestServerGracefulStop: stopping closes the listener at once but waits
// for the running handler.
func TestServerGracefulStop(t *testing.T) {
	t.Parallel()
	inHandler := make(chan struct{})
	finish := make(chan struct{})
	finished := false
	var first sync.Once
	srv := &Server{Handler: func(conn net.Conn, env map[string]string) {
		isFirst := false
		first.Do(func() { isFirst = true })
		if !isFirst {
			return // the probes below, until the listener closes
		}
		close(inHandler)
		<-finish
		io.WriteString(conn, "bye\n")
		finished = true
	}}
	addr, stop := startServer(t, srv)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	<-inHandler
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	// New clients are refused once the listener is closed.
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
	}
	close(finish)
	<-stopped
	if !finished {
		t.Error("Serve returned before the handler finished")
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if line != "bye\n" {
		t.Errorf("client got %q", line)
	}
}

func TestListenMode(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--listen", "x"}, true},
		{[]string{"-listen", "x"}, true},
		{[]string{"--listen=127.0.0.1:25"}, true},
		{[]string{"/bin/checkpassword", "--listen"}, false},
		{[]string{"listen"}, false},
		{[]string{"--listener"}, false},
	}
	for _, tt := range tests {
		if got := ListenMode(tt.args); got != tt.want {
			t.Errorf("ListenMode(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var o Options
	o.AddFlags(fs, "qmaild")
	err := fs.Parse([]string{"--listen", "127.0.0.1:0", "-listen=127.0.0.1:0", "-x", "r.cdb", "-c", "7", "-l", "mx.example", "-grace", "3s",
		"-u", strconv.Itoa(os.Getuid()), "-g", strconv.Itoa(os.Getgid()), "/bin/checkpassword", "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Addrs) != 2 || o.Rules != "r.cdb" || o.MaxConns != 7 || o.LocalHost != "mx.example" || o.Account != "qmaild" ||
		!reflect.DeepEqual(fs.Args(), []string{"/bin/checkpassword", "/bin/true"}) {
		t.Fatalf("options %+v, args %q", o, fs.Args())
	}
	var log bytes.Buffer
	lns, err := o.Listen("prog", &log)
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range lns {
		ln.Close()
	}
	if len(lns) != 2 || strings.Count(log.String(), "prog: listening on 127.0.0.1:") != 2 {
		t.Errorf("listeners %v, log %q", lns, log.String())
	}
	srv := o.Server("prog", &log, []string{"A=b"})
	if srv.RulesPath != "r.cdb" || srv.MaxConns != 7 || srv.LocalHost != "mx.example" || srv.Name != "prog" || srv.Grace != 3*time.Second {
		t.Errorf("server %+v", srv)
	}
	if _, err := (&Options{}).Listen("prog", &log); err == nil {
		t.Error("Listen without addresses succeeded")
	}
	bad := Options{Addrs: addrList{"127.0.0.1:0", "256.0.0.1:0"}}
	if _, err := bad.Listen("prog", io.Discard); err == nil {
		t.Error("Listen on a bad address succeeded")
	}
}
