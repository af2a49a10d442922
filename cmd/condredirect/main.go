// Command condredirect forwards the message when a program says so (condredirect(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Condredirect(os.Args[1:], tools.ProcessIO(control.Home())))
}
