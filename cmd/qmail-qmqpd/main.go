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
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/qmtp"
)

func main() {
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(qmtp.Main("qmail-qmqpd", qmtp.QMQP, os.Args[1:], os.Stderr))
}
