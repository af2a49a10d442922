// Command qmail-smtpd receives mail over SMTP (qmail-smtpd(8)).
//
// Under tcpserver, one process per connection, the socket on fd 0 and 1:
//
//	qmail-smtpd [checkpassword-program [args...]]
//
// As a standalone listener, one process for all connections:
//
//	qmail-smtpd --listen ADDR [--listen ADDR...] [-x tcp.smtp.cdb] [-c limit]
//	    [-l localname] [-user qmaild | -u uid -g gid] [-grace 10s] [--] [checkpassword...]
//
// The optional trailing arguments are the checkpassword chain used for
// SMTP AUTH (see SMTPAUTH in docs/smtpd.md). On TERM the listener stops
// accepting at once, lets running sessions go on for -grace (default
// 10s), then closes the remaining connections (never between
// qmail-queue's success and the 250 reaching the client) and exits 0.
// The listener queues messages through one long-running
// "qmail-queue --writer" started before it drops privileges (see
// smtpd.StartQueueWriter), not a qmail-queue per message.
package main

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/timerslack"
	"github.com/goqmail/goqmail/smtpd"
	"github.com/goqmail/goqmail/tcpserver"
)

func main() {
	// A client that goes away must give a write error, not SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	if tcpserver.ListenMode(os.Args[1:]) {
		timerslack.Ensure()
		os.Exit(listen(os.Args[1:]))
	}
	home := control.Home()
	conn := smtpd.StdioConn()
	refuse := func(err error) {
		env := smtpd.ReadEnviron(os.LookupEnv)
		os.Exit(smtpd.RefuseSession(conn, os.Stderr, os.Getpid(), env.RemoteIP, err))
	}
	if err := os.Chdir(home); err != nil {
		refuse(err)
	}
	cfg, err := smtpd.LoadConfig(home, os.LookupEnv)
	if err != nil {
		refuse(err)
	}
	cfg.CheckPassword = os.Args[1:]
	session := smtpd.NewSession(cfg, conn, os.Stderr)
	session.SetEnv = func(k, v string) { os.Setenv(k, v) }
	os.Exit(session.Run())
}

func listen(args []string) int {
	return tcpserver.Main("qmail-smtpd", "qmaild", args, os.Stderr, func(home string, checkpassword []string, log io.Writer) (tcpserver.Handler, error) {
		sessions := &smtpd.Listener{Home: home, CheckPassword: checkpassword, Log: log,
			Writer: smtpd.StartQueueWriter(home, os.Environ(), log)}
		return sessions.ServeConn, nil
	})
}
