// Command qmail-tcpok clears qmail-remote's record of connection
// timeouts, queue/lock/tcpto (qmail-tcpok(8)).
package main

import (
	"fmt"
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/remote"
)

func main() {
	if err := remote.ClearTCPTO(remote.TCPTOPath(control.Home())); err != nil {
		fmt.Fprintf(os.Stderr, "qmail-tcpok: fatal: %v\n", err)
		os.Exit(111)
	}
}
