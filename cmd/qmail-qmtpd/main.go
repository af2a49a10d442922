// Command qmail-qmtpd receives mail over QMTP (qmail-qmtpd(8)), one
// connection per process under tcpserver, the socket on fd 0 and 1:
//
//	tcpserver 0 209 qmail-qmtpd
//
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
	"github.com/goqmail/goqmail/smtpd"
)

func main() {
	signal.Ignore(syscall.SIGPIPE)
	home := control.Home()
	if err := os.Chdir(home); err != nil {
		fatal(err)
	}
	cfg, err := qmtp.LoadConfig(home, os.LookupEnv)
	if err != nil {
		fatal(err)
	}
	code, err := qmtp.ServeQMTP(smtpd.StdioConn(), cfg)
	if err != nil && code != qmtp.ExitOK {
		fmt.Fprintf(os.Stderr, "qmail-qmtpd: %v\n", err)
	}
	os.Exit(code)
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "qmail-qmtpd: %v\n", err)
	os.Exit(qmtp.ExitResources)
}
