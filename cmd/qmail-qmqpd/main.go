// Command qmail-qmqpd receives mail over QMQP (qmail-qmqpd(8)) from
// qmail-qmqpc clients, one request per connection.
//
// Under tcpserver, one process per connection, the socket on fd 0 and 1:
//
//	tcpserver -x /etc/tcp.qmqp.cdb 0 628 qmail-qmqpd
//
// As a standalone listener, one process for all connections (see
// docs/tcpserver.md for the options):
//
//	qmail-qmqpd --listen ADDR [--listen ADDR...] -x tcp.qmqp.cdb [-c limit]
//	    [-l localname] [-user qmaild | -u uid -g gid] [-grace 10s]
//
// It relays for anyone who can connect: restrict access with tcprules.
// Exit codes: 0 normally, 100 for malformed netstrings, 111 for resource
// trouble or the one-hour connection limit. See docs/qmtp.md.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/qmtp"
	"github.com/goqmail/goqmail/queue"
	"github.com/goqmail/goqmail/smtpd"
	"github.com/goqmail/goqmail/tcpserver"
)

const name = "qmail-qmqpd"

func main() {
	signal.Ignore(syscall.SIGPIPE)
	if tcpserver.ListenMode(os.Args[1:]) {
		os.Exit(listen(os.Args[1:]))
	}
	home := control.Home()
	if err := os.Chdir(home); err != nil {
		fatal(err)
	}
	cfg := &qmtp.Config{
		Env:       smtpd.ReadEnviron(os.LookupEnv),
		OpenQueue: func() (qmtp.Queue, error) { return queue.Open(home) },
	}
	code, err := qmtp.ServeQMQP(smtpd.StdioConn(), cfg)
	if err != nil && code != qmtp.ExitOK {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	os.Exit(code)
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(qmtp.ExitResources)
}

func listen(args []string) int {
	return tcpserver.Main(name, "qmaild", args, os.Stderr, func(home string, rest []string) (tcpserver.Handler, error) {
		if len(rest) != 0 {
			return nil, &tcpserver.UsageError{Msg: fmt.Sprintf("unexpected arguments: %q", rest)}
		}
		sessions := &qmtp.Listener{Home: home, Log: os.Stderr, Name: name}
		return sessions.ServeQMQP, nil
	})
}
