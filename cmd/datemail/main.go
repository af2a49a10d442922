// Command datemail is sendmail with a Date: line added (datemail(1)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local/tools"
)

func main() {
	os.Exit(tools.Datemail(os.Args[1:], tools.ProcessIO(control.Home())))
}
