// Command mailsubj sends its input as a message with a subject (mailsubj(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Mailsubj(os.Args[1:], tools.ProcessIO(control.Home())))
}
