package smtpd

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/goqmail/goqmail/queue"
	"github.com/goqmail/goqmail/tcpserver"
	"golang.org/x/sys/unix"
)

// Listener runs the SMTP sessions of the standalone listener: it is the
// tcpserver.Server handler (ServeConn), and each session gets the
// environment that server built for its connection. Control files are
// read again whenever control/ changes (ConfigCache), so a change applies
// from the next connection on, without a restart.
type Listener struct {
	Home          string
	CheckPassword []string
	Log           io.Writer
	// Writer, when not nil, queues the messages of the sessions that
	// have no QMAILQUEUE, instead of a qmail-queue per message. Once it
	// has exited, those sessions run qmail-queue again.
	Writer *queue.Writer

	sessions  atomic.Int64
	fellBack  atomic.Bool
	cacheOnce sync.Once
	configs   *ConfigCache
}

// ServeConn runs one session on conn with the tcp-environ and rule
// variables in env. The programs the session starts (qmail-queue,
// checkpassword, RCPTCHECK) get exactly that environment, so a rule's
// QMAILQUEUE, RCPTCHECK or SMTPAUTH applies to this client only.
func (l *Listener) ServeConn(conn net.Conn, env map[string]string) {
	id := int(l.sessions.Add(1))
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	// Made on the first connection: after the listener has dropped its
	// privileges, as the sessions that read the files.
	l.cacheOnce.Do(func() { l.configs = NewConfigCache(l.Home) })
	cfg, release, err := l.configs.Config(lookup)
	if err != nil {
		RefuseSession(conn, l.Log, id, env["TCPREMOTEIP"], err)
		return
	}
	defer release()
	cfg.CheckPassword = l.CheckPassword
	s := NewSession(cfg, conn, l.Log)
	s.Pid = id
	s.ChildEnv = tcpserver.EnvList(env)
	if l.Writer != nil {
		execQueue := s.OpenQueue
		s.OpenQueue = func() (Queue, error) {
			// A QMAILQUEUE (global or from this client's rule) naming
			// another program is run as before.
			if queue.Program(l.Home, s.childEnv()) != queue.Program(l.Home, nil) {
				return execQueue()
			}
			q, err := l.Writer.Open()
			if err == nil {
				return q, nil
			}
			if !l.fellBack.Swap(true) {
				fmt.Fprintf(l.Log, "qmail-smtpd: queue writer unavailable, running qmail-queue per message: %v\n", err)
			}
			return execQueue()
		}
	}
	s.Run()
}

// StartQueueWriter starts the listener's long-running queue writer
// (queue.StartWriter) when the messages would otherwise run the home's
// bin/qmail-queue, before the listener drops its privileges. It runs as
// that qmail-queue would for the listener: as root, with the owner and
// group of a setuid qmail-queue (qmailq on an installation); else as the
// caller. A nil Writer (no writer: QMAILQUEUE names another program, a
// root listener with a qmail-queue that is not setuid, or a start
// failure, which is logged) leaves one qmail-queue per message.
func StartQueueWriter(home string, environ []string, log io.Writer) *queue.Writer {
	program := queue.Program(home, nil)
	if queue.Program(home, environ) != program {
		return nil
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		var st unix.Stat_t
		if err := unix.Stat(program, &st); err != nil || st.Mode&unix.S_ISUID == 0 {
			// As root qmail-queue would run as the listener's account
			// after the drop: not known here, so the writer is not used.
			return nil
		}
		cred = &syscall.Credential{Uid: st.Uid, Gid: st.Gid, Groups: []uint32{}}
	}
	w, err := queue.StartWriter(home, program, environ, cred, log)
	if err != nil {
		fmt.Fprintf(log, "qmail-smtpd: %v: running qmail-queue per message\n", err)
		return nil
	}
	return w
}
