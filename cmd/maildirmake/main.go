// Command maildirmake creates a maildir (maildirmake(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Maildirmake(os.Args[1:], tools.ProcessIO(control.Home())))
}
