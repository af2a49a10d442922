// Command preline feeds a program the message with qmail-local's envelope lines in front (preline(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Preline(os.Args[1:], tools.ProcessIO(control.Home())))
}
