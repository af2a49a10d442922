// Package tcpserver is the standalone listener shared by qmail-smtpd,
// qmail-qmtpd, qmail-qmqpd and qmail-popup: what ucspi-tcp's tcpserver
// does for them (a connection limit, the tcp-environ(5) variables, the
// tcprules cdb with its "D" and "+VAR=value" entries, dropping root after
// binding), run inside one process that calls a handler per connection.
package tcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxConns is tcpserver's default -c limit.
const DefaultMaxConns = 40

// Server accepts connections and runs Handler for each one with the
// environment tcpserver would have given the program it starts.
type Server struct {
	// RulesPath is the tcprules cdb (tcpserver -x); "" allows everyone.
	// It is reopened for every connection, so a new cdb applies at once.
	RulesPath string
	// LocalHost is TCPLOCALHOST (tcpserver -l); "" leaves it unset.
	LocalHost string
	// MaxConns bounds the concurrent connections (tcpserver -c); 0 means
	// DefaultMaxConns. Further clients wait in the kernel's backlog.
	MaxConns int
	// Log receives one line per refused connection or accept failure;
	// nil discards them.
	Log io.Writer
	// Name prefixes the log lines (the program name).
	Name string
	// BaseEnv is the environment every connection starts from, usually
	// os.Environ().
	BaseEnv []string
	// Grace is how long Serve, once stopped, lets running sessions go on
	// before closing their connections; 0 means DefaultGrace.
	Grace time.Duration
	// Handler serves one connection; env is the connection's own copy.
	// The connection is closed when Handler returns. A TCP connection is
	// a *Conn, whose Hold defers a forced close (see Serve).
	Handler func(conn net.Conn, env map[string]string)
}

// liveConns is the set of connections being served, for the forced
// close at the end of the grace period.
type liveConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *liveConns) add(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns[c] = struct{}{}
}

func (l *liveConns) remove(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

func (l *liveConns) list() []net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Collect(maps.Keys(l.conns))
}

// Serve accepts on every listener until ctx ends. Then it closes the
// listeners at once, lets the running handlers go on for the grace
// period, and after it closes their connections (waiting for any held
// with Conn.Hold, so that a message qmail-queue accepted always gets its
// reply) and waits for the handlers to return. It returns nil after a
// stop by ctx.
func (s *Server) Serve(ctx context.Context, lns []net.Listener) error {
	if s.Handler == nil {
		return errors.New("tcpserver: no handler")
	}
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	grace := s.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	slots := make(chan struct{}, maxConns)
	live := &liveConns{conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.acceptLoop(ctx, ln, slots, &wg, live)
		}()
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
	}
	conns := live.list()
	s.logf("grace period of %v over, closing %d connections", grace, len(conns))
	for _, c := range conns {
		if tc, ok := c.(*Conn); ok {
			go tc.forceClose()
		} else {
			c.Close()
		}
	}
	<-done
	return nil
}

func (s *Server) acceptLoop(ctx context.Context, ln net.Listener, slots chan struct{}, wg *sync.WaitGroup, live *liveConns) {
	for {
		// Like tcpserver -c, wait for a free slot before accepting, so
		// that excess clients queue in the backlog instead of memory.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		conn, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, or a client gone before accept: the
			// listener must survive, so report and retry shortly.
			s.logf("accept on %s: %v", ln.Addr(), err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return
			}
			continue
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			conn = &Conn{TCPConn: tc}
		}
		live.add(conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer live.remove(conn)
			defer conn.Close()
			s.serveConn(conn)
		}()
	}
}

// serveConn applies the rules and runs the handler.
func (s *Server) serveConn(conn net.Conn) {
	env := Environ(s.BaseEnv, conn, s.LocalHost)
	remote := env["TCPREMOTEIP"]
	// Under tcpserver a crash ends one client's process; here it would
	// end every session of the listener, including ones between
	// qmail-queue's success and their reply. Confine it to this client.
	defer func() {
		if r := recover(); r != nil {
			s.logf("panic serving %s: %v: %s", remote, r, debug.Stack())
		}
	}()
	if s.RulesPath != "" {
		rule, err := LookupRule(s.RulesPath, remote)
		if err != nil {
			// tcpserver drops the connection when it cannot read its
			// rules: a broken cdb must not open the door.
			s.logf("unable to read rules, dropping %s: %v", remote, err)
			return
		}
		if rule.Deny {
			s.logf("deny %s", remote)
			return
		}
		for _, kv := range rule.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	s.Handler(conn, env)
}

func (s *Server) logf(format string, args ...any) {
	if s.Log == nil {
		return
	}
	line := fmt.Sprintf(format, args...)
	// Error texts may quote file contents; keep the log one line each.
	line = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, line)
	name := s.Name
	if name == "" {
		name = "tcpserver"
	}
	io.WriteString(s.Log, name+": "+line+"\n")
}

// Environ is the environment tcpserver -H -R gives a connection's
// program: base without the variables it would unset, plus PROTO=TCP,
// TCPLOCALIP, TCPLOCALPORT, TCPREMOTEIP, TCPREMOTEPORT, and TCPLOCALHOST
// when localHost is not "". No DNS or IDENT lookup is made, so
// TCPREMOTEHOST and TCPREMOTEINFO are never set.
func Environ(base []string, conn net.Conn, localHost string) map[string]string {
	env := EnvMap(base)
	for _, k := range []string{"TCPREMOTEHOST", "TCPREMOTEINFO", "TCPLOCALHOST"} {
		delete(env, k)
	}
	localIP, localPort := splitAddr(conn.LocalAddr())
	remoteIP, remotePort := splitAddr(conn.RemoteAddr())
	env["PROTO"] = "TCP"
	env["TCPLOCALIP"] = localIP
	env["TCPLOCALPORT"] = localPort
	env["TCPREMOTEIP"] = remoteIP
	env["TCPREMOTEPORT"] = remotePort
	if localHost != "" {
		env["TCPLOCALHOST"] = localHost
	}
	return env
}

// splitAddr gives the address and port of a socket end, with IPv4-mapped
// IPv6 addresses shown as IPv4 (as tcpserver does for a dual-stack socket).
func splitAddr(a net.Addr) (ip, port string) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().String(), strconv.Itoa(ta.Port)
	}
	h, p, _ := net.SplitHostPort(a.String())
	return h, p
}

// EnvMap turns "NAME=value" entries into a map; for a repeated name the
// last entry wins, as in exec. Entries without '=' are dropped.
func EnvMap(list []string) map[string]string {
	m := make(map[string]string, len(list))
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// EnvList turns a map back into "NAME=value" entries, sorted by name so
// that children see a stable environment.
func EnvList(m map[string]string) []string {
	l := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		l = append(l, k+"="+m[k])
	}
	return l
}
