// Command qmail-showctl explains the configuration of the qmail home
// (qmail-showctl(8)): compile-time settings, then every control file.
package main

import (
	"os"

	"github.com/goqmail/goqmail/admin"
	"github.com/goqmail/goqmail/control"
)

func main() {
	ids, err := admin.LookupIds()
	if err != nil {
		ids = nil // an unprivileged home: no qmail users to show
	}
	if err := admin.ShowCtl(os.Stdout, control.Home(), ids); err != nil {
		os.Exit(111)
	}
}
