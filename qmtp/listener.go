package qmtp

import (
	"fmt"
	"io"
	"net"

	"github.com/goqmail/goqmail/internal/inbound"
	"github.com/goqmail/goqmail/queue"
	"github.com/goqmail/goqmail/tcpserver"
)

// Listener runs the QMTP or QMQP sessions of a standalone listener
// (qmail-qmtpd --listen, qmail-qmqpd --listen): ServeQMTP and ServeQMQP
// are tcpserver.Server handlers. Each connection is configured from the
// environment the server built for it (tcp-environ plus the tcprules
// entry), never from the process environment, and its queue program runs
// with exactly that environment, so a rule's RELAYCLIENT, DATABYTES or
// QMAILQUEUE applies to that client only. Control files are read for
// every connection, as a process started by tcpserver would.
type Listener struct {
	Home string
	Log  io.Writer // one line per session that ends in error
	Name string    // the program name prefixing log lines
}

// ServeQMTP serves one QMTP connection.
func (l *Listener) ServeQMTP(conn net.Conn, env map[string]string) {
	cfg, err := LoadConfig(l.Home, lookupIn(env))
	if err != nil {
		l.logf(env, "%v", err)
		return
	}
	defer cfg.Close()
	cfg.OpenQueue = l.queueOpener(env)
	cfg.Hold = holdOf(conn)
	if code, err := ServeQMTP(conn, cfg); err != nil && code != ExitOK {
		l.logf(env, "%v", err)
	}
}

// ServeQMQP serves one QMQP connection. QMQP relays for every client it
// accepts: the tcprules cdb is what restricts it.
func (l *Listener) ServeQMQP(conn net.Conn, env map[string]string) {
	cfg := &Config{
		Env:       inbound.ReadEnviron(lookupIn(env)),
		OpenQueue: l.queueOpener(env),
		Hold:      holdOf(conn),
	}
	if code, err := ServeQMQP(conn, cfg); err != nil && code != ExitOK {
		l.logf(env, "%v", err)
	}
}

// queueOpener starts the queue program (env's QMAILQUEUE, else
// bin/qmail-queue) with the connection's environment.
func (l *Listener) queueOpener(env map[string]string) func() (Queue, error) {
	list := tcpserver.EnvList(env)
	return func() (Queue, error) {
		q, err := queue.OpenEnv(l.Home, list)
		if err != nil {
			return nil, err
		}
		return q, nil
	}
}

// holdOf is the connection's Hold when the server offers one.
func holdOf(conn net.Conn) func() (release func()) {
	if h, ok := conn.(tcpserver.Holder); ok {
		return h.Hold
	}
	return nil
}

func lookupIn(env map[string]string) inbound.LookupEnv {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// logf writes one log line naming the client. Error texts can quote
// client bytes: %q keeps the line one line.
func (l *Listener) logf(env map[string]string, format string, args ...any) {
	if l.Log == nil {
		return
	}
	fmt.Fprintf(l.Log, "%s: %s: %q\n", l.Name, env["TCPREMOTEIP"], fmt.Sprintf(format, args...))
}
