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
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/qmtp"
	"github.com/goqmail/goqmail/smtpd"
	"github.com/goqmail/goqmail/tcpserver"
)

const name = "qmail-qmtpd"

func main() {
	signal.Ignore(syscall.SIGPIPE)
	if tcpserver.ListenMode(os.Args[1:]) {
		os.Exit(listen(os.Args[1:]))
	}
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
		return sessions.ServeQMTP, nil
	})
}
