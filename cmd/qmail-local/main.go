// Command qmail-local delivers one message to one local address as its
// .qmail file says (qmail-local(8)).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/local"
)

func main() {
	os.Exit(local.Main(os.Args[1:], control.Home()))
}
