// Command qreceipt answers delivery notice requests (qreceipt(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Qreceipt(os.Args[1:], tools.ProcessIO(control.Home())))
}
