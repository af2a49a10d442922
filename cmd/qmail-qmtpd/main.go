// Command qmail-qmtpd receives mail over QMTP (qmail-qmtpd(8)).
//
// Under tcpserver, one connection per process, the socket on fd 0 and 1:
//
//	tcpserver 0 209 qmail-qmtpd
//
// As a standalone listener, one process for all connections (see
// docs/tcpserver.md for the options):
//
//	qmail-qmtpd --listen ADDR [--listen ADDR...] [-x tcp.qmtp.cdb] [-c limit]
//	    [-l localname] [-user qmaild | -u uid -g gid] [-grace 10s]
//
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
	os.Exit(qmtp.Main("qmail-qmtpd", qmtp.QMTP, os.Args[1:], os.Stderr))
}
