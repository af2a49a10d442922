// Command qmail-qmqpd receives mail over QMQP (qmail-qmqpd(8)) from
// qmail-qmqpc clients, one request per process under tcpserver, the
// socket on fd 0 and 1:
//
//	tcpserver -x /etc/tcp.qmqp.cdb 0 628 qmail-qmqpd
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
)

func main() {
	signal.Ignore(syscall.SIGPIPE)
	home := control.Home()
	if err := os.Chdir(home); err != nil {
		fmt.Fprintf(os.Stderr, "qmail-qmqpd: %v\n", err)
		os.Exit(qmtp.ExitResources)
	}
	cfg := &qmtp.Config{
		Env:       smtpd.ReadEnviron(os.LookupEnv),
		OpenQueue: func() (qmtp.Queue, error) { return queue.Open(home) },
	}
	code, err := qmtp.ServeQMQP(smtpd.StdioConn(), cfg)
	if err != nil && code != qmtp.ExitOK {
		fmt.Fprintf(os.Stderr, "qmail-qmqpd: %v\n", err)
	}
	os.Exit(code)
}
