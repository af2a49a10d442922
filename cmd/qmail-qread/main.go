// Command qmail-qread lists the messages in the queue (qmail-qread(8)):
// one line per message, then one line per recipient. It needs to read
// queue/info and friends, so it runs as root or qmails.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goqmail/goqmail/admin"
	"github.com/goqmail/goqmail/control"
)

func main() {
	out := bufio.NewWriter(os.Stdout)
	entries, err := admin.ReadQueue(filepath.Join(control.Home(), "queue"))
	if werr := admin.WriteQread(out, entries); werr != nil {
		os.Exit(111)
	}
	if err != nil {
		// qmail-qread reports its fatal errors on stdout, too.
		fmt.Fprintf(out, "fatal: %v\n", err)
		out.Flush()
		os.Exit(111)
	}
	if out.Flush() != nil {
		os.Exit(111)
	}
}
