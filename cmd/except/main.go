// Command except reverses the exit code of a program (except(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Except(os.Args[1:], tools.ProcessIO(control.Home())))
}
