// Command forward queues the message to the given addresses (forward(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Forward(os.Args[1:], tools.ProcessIO(control.Home())))
}
