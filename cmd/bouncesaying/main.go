// Command bouncesaying bounces the message, optionally only when a program says so (bouncesaying(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Bouncesaying(os.Args[1:], tools.ProcessIO(control.Home())))
}
