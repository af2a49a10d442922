package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Listener is the standalone SMTP server: the sessions tcpserver would
// start, run in one process. Control files and the rules cdb are read for
// every connection, so changes apply without a restart.
type Listener struct {
	Home          string
	RulesPath     string // tcprules cdb (-x); "" allows everyone
	LocalHost     string // TCPLOCALHOST (-l); "" leaves it unset
	MaxConns      int    // concurrent sessions (-c); tcpserver's default is 40
	CheckPassword []string
	Log           io.Writer
	// BaseEnv is the environment every session starts from (os.Environ).
	BaseEnv []string

	sessions atomic.Int64
}

// Serve accepts on every listener until ctx ends, then stops accepting
// and waits for the running sessions to finish.
func (l *Listener) Serve(ctx context.Context, lns []net.Listener) error {
	maxConns := l.MaxConns
	if maxConns <= 0 {
		maxConns = 40
	}
	slots := make(chan struct{}, maxConns)
	var wg sync.WaitGroup
	errs := make(chan error, len(lns))
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- l.acceptLoop(ctx, ln, slots, &wg)
		}()
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Listener) acceptLoop(ctx context.Context, ln net.Listener, slots chan struct{}, wg *sync.WaitGroup) error {
	for {
		// Like tcpserver -c, wait for a free slot before accepting.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors or a connection reset before accept:
			// the listener must survive, so report and retry shortly.
			if l.Log != nil {
				fmt.Fprintf(l.Log, "qmail-smtpd: accept on %s: %v\n", ln.Addr(), err)
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer conn.Close()
			l.serveConn(conn)
		}()
	}
}

// serveConn runs one session with the tcp-environ variables tcpserver
// would set, plus the rule's variables.
func (l *Listener) serveConn(conn net.Conn) {
	id := int(l.sessions.Add(1))
	local, _ := splitAddr(conn.LocalAddr())
	remote, remotePort := splitAddr(conn.RemoteAddr())
	_, localPort := splitAddr(conn.LocalAddr())
	env := envMap(l.BaseEnv)
	for _, k := range []string{"TCPREMOTEHOST", "TCPREMOTEINFO", "TCPLOCALHOST"} {
		delete(env, k)
	}
	env["PROTO"] = "TCP"
	env["TCPLOCALIP"] = local
	env["TCPLOCALPORT"] = localPort
	env["TCPREMOTEIP"] = remote
	env["TCPREMOTEPORT"] = remotePort
	if l.LocalHost != "" {
		env["TCPLOCALHOST"] = l.LocalHost
	}
	log := NewLogger(l.Log, id, remote)
	if l.RulesPath != "" {
		rule, err := LookupRule(l.RulesPath, remote)
		if err != nil {
			// tcpserver drops the connection when it cannot read its
			// rules; so do we.
			log.Event("Unable to read rules: " + Clean(err.Error()))
			return
		}
		if rule.Deny {
			log.Event("Denied by rules")
			return
		}
		for _, kv := range rule.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := LoadConfig(l.Home, lookup)
	if err != nil {
		RefuseSession(conn, l.Log, id, remote, err)
		return
	}
	cfg.CheckPassword = l.CheckPassword
	s := NewSession(cfg, conn, l.Log)
	s.Pid = id
	s.ChildEnv = envList(env)
	s.Run()
}

func splitAddr(a net.Addr) (ip, port string) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().String(), strconv.Itoa(ta.Port)
	}
	h, p, _ := net.SplitHostPort(a.String())
	return h, p
}

func envMap(list []string) map[string]string {
	m := make(map[string]string, len(list))
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func envList(m map[string]string) []string {
	l := make([]string, 0, len(m))
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	return l
}

// DropPrivileges switches a root process to uid and gid (clearing the
// supplementary groups), as tcpserver -u -g does after binding. Without
// root it does nothing.
func DropPrivileges(uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
}

// LookupAccount gives the uid and primary gid of an account (qmaild).
func LookupAccount(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return uid, gid, nil
}
