// Command qmail-qstat summarizes the queue (qmail-qstat(8)): how many
// messages it holds and how many qmail-send has not preprocessed yet.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/goqmail/goqmail/admin"
	"github.com/goqmail/goqmail/control"
)

func main() {
	s, err := admin.StatQueue(filepath.Join(control.Home(), "queue"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "qmail-qstat: fatal: %v\n", err)
		os.Exit(111)
	}
	if admin.WriteQstat(os.Stdout, s) != nil {
		os.Exit(111)
	}
}
