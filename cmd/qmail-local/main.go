// Command qmail-local delivers one message to one local address as its
// .qmail file says (qmail-local(8)). "qmail-local --worker" is the
// long-running form qmail-lspawn uses (local.ServeWorker).
package main

import (
	"fmt"
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/timerslack"
	"github.com/goqmail/goqmail/internal/worker"
	"github.com/goqmail/goqmail/local"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == worker.Arg {
		timerslack.Ensure()
		conn, err := worker.Inherited()
		if err == nil {
			err = local.ServeWorker(conn, control.Home())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "qmail-local: %v\n", err)
			os.Exit(111)
		}
		return
	}
	os.Exit(local.Main(os.Args[1:], control.Home()))
}
