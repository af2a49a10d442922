// Command qmail-tcpto prints qmail-remote's record of connection
// timeouts, queue/lock/tcpto (qmail-tcpto(8)), one line per address.
package main

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/remote"
)

func main() {
	out := bufio.NewWriter(os.Stdout)
	entries, err := remote.ReadTCPTO(remote.TCPTOPath(control.Home()), time.Now())
	if err != nil {
		// qmail-tcpto writes its complaints to fd 1 too.
		fmt.Fprintf(out, "fatal: %v\n", err)
		out.Flush()
		os.Exit(111)
	}
	for _, e := range entries {
		fmt.Fprintf(out, "%s timed out %d seconds ago; # recent timeouts: %d\n", e.Addr, uint64(e.Ago), e.Count)
	}
	if err := out.Flush(); err != nil {
		os.Exit(111)
	}
}
