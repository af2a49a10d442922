// Command qmail-pw2u turns password entries on standard input into a
// users/assign on standard output (qmail-pw2u(8)), consulting
// users/include, exclude, mailnames, subusers and append. Options
// -/ohHuUC and -c char; exit 100 for bad options, 111 for any failure.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/users"
)

func main() {
	opts, err := users.ParsePW2UArgs(os.Args[1:])
	if errors.Is(err, users.ErrUsage) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(100)
	}
	if err := users.PW2U(control.Home(), os.Stdin, os.Stdout, opts); err != nil {
		fmt.Fprintf(os.Stderr, "qmail-pw2u: fatal: %v\n", err)
		os.Exit(111)
	}
}
