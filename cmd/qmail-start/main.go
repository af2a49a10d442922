// Command qmail-start starts qmail's queue manager: qmail-start
// [defaultdelivery [logger arg...]] (qmail-start(8)).
package main

import (
	"fmt"
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/timerslack"
	"github.com/goqmail/goqmail/send"
)

func main() {
	timerslack.Ensure()
	defaultDelivery := "./Mailbox"
	args := os.Args[1:]
	if len(args) > 0 {
		defaultDelivery, args = args[0], args[1:]
	}
	err := send.Start(control.Home(), defaultDelivery, args)
	fmt.Fprintf(os.Stderr, "qmail-start: fatal: %v\n", err)
	os.Exit(111)
}
