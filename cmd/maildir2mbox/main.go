// Command maildir2mbox moves the messages of $MAILDIR to the mbox $MAIL (maildir2mbox(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Maildir2mbox(os.Args[1:], tools.ProcessIO(control.Home())))
}
