// Command predate feeds a program its input with a Date: line in front (predate(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Predate(os.Args[1:], tools.ProcessIO(control.Home())))
}
