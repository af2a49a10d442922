// Command qmail-inject preprocesses a mail message and queues it
// (qmail-inject(8)).
package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/inject"
)

func main() {
	// A reader that goes away must not kill us before we report: qmail
	// ignores SIGPIPE here too.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(inject.Run(inject.Invocation{
		Args:   os.Args,
		Env:    os.LookupEnv,
		Home:   control.Home(),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Now:    time.Now(),
		Pid:    os.Getpid(),
	}))
}
