// Command qmail-local delivers one message to one local address as its
// .qmail file says (qmail-local(8)). "qmail-local --worker" is the
// long-running form qmail-lspawn uses (local.ServeWorker).
package main

import (
	"fmt"
	"net"
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/worker"
	"github.com/goqmail/goqmail/local"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == worker.Arg {
		conn, err := net.FileConn(os.NewFile(3, "worker"))
		if err == nil {
			if uc, ok := conn.(*net.UnixConn); ok {
				err = local.ServeWorker(uc, control.Home())
			} else {
				err = fmt.Errorf("%s: fd 3 is not a Unix socket", worker.Arg)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "qmail-local: %v\n", err)
			os.Exit(111)
		}
		return
	}
	os.Exit(local.Main(os.Args[1:], control.Home()))
}
