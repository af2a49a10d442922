package smtpd

import (
	"io"
	"net"
	"sync/atomic"

	"github.com/goqmail/goqmail/tcpserver"
)

// Listener runs the SMTP sessions of the standalone listener: it is the
// tcpserver.Server handler (ServeConn), and each session gets the
// environment that server built for its connection. Control files are
// read for every connection, so changes apply without a restart.
type Listener struct {
	Home          string
	CheckPassword []string
	Log           io.Writer

	sessions atomic.Int64
}

// ServeConn runs one session on conn with the tcp-environ and rule
// variables in env. The programs the session starts (qmail-queue,
// checkpassword, RCPTCHECK) get exactly that environment, so a rule's
// QMAILQUEUE, RCPTCHECK or SMTPAUTH applies to this client only.
func (l *Listener) ServeConn(conn net.Conn, env map[string]string) {
	id := int(l.sessions.Add(1))
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := LoadConfig(l.Home, lookup)
	if err != nil {
		RefuseSession(conn, l.Log, id, env["TCPREMOTEIP"], err)
		return
	}
	defer cfg.RcptHosts.Close()
	cfg.CheckPassword = l.CheckPassword
	s := NewSession(cfg, conn, l.Log)
	s.Pid = id
	s.ChildEnv = tcpserver.EnvList(env)
	s.Run()
}
