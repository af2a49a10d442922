// Command qmail-remote sends one message to a remote host by SMTP
// (qmail-remote(8)): qmail-remote host sender recip..., the message on
// fd 0, the reports on fd 1. It always exits 0; the outcome is in the
// reports. "qmail-remote --worker" is the long-running form
// qmail-rspawn uses (remote.ServeWorker).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/timerslack"
	"github.com/goqmail/goqmail/internal/worker"
	"github.com/goqmail/goqmail/remote"
)

func main() {
	signal.Ignore(syscall.SIGPIPE)
	if len(os.Args) == 2 && os.Args[1] == worker.Arg {
		timerslack.Ensure()
		conn, err := worker.Inherited()
		if err == nil {
			err = remote.ServeWorker(conn, control.Home())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "qmail-remote: %v\n", err)
			os.Exit(111)
		}
		return
	}
	prog := &remote.Program{Home: control.Home()}
	prog.Deliver(os.Args[1:], os.Stdin, os.Stdout)
}
