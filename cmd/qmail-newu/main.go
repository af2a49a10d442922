// Command qmail-newu compiles users/assign into users/cdb (qmail-newu(8)).
// Any error leaves users/cdb untouched and exits 111.
package main

import (
	"fmt"
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/users"
)

func main() {
	if err := users.NewU(control.Home()); err != nil {
		fmt.Fprintf(os.Stderr, "qmail-newu: fatal: %v\n", err)
		os.Exit(111)
	}
}
