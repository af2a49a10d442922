// Command qmail-newmrh compiles control/morercpthosts into
// control/morercpthosts.cdb (qmail-newmrh(8)). Any error leaves the cdb
// untouched and exits 111.
package main

import (
	"fmt"
	"os"

	"github.com/goqmail/goqmail/control"
)

func main() {
	if err := control.NewMRH(control.Home()); err != nil {
		fmt.Fprintf(os.Stderr, "qmail-newmrh: fatal: %v\n", err)
		os.Exit(111)
	}
}
