// Command qmail-remote sends one message to a remote host by SMTP
// (qmail-remote(8)): qmail-remote host sender recip..., the message on
// fd 0, the reports on fd 1. It always exits 0; the outcome is in the
// reports.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/remote"
)

func main() {
	signal.Ignore(syscall.SIGPIPE)
	if len(os.Args) < 4 {
		remote.Usage(os.Stdout)
		return
	}
	home := control.Home()
	if err := os.Chdir(home); err != nil {
		remote.NoHome(os.Stdout)
		return
	}
	d := &remote.Delivery{
		Home:       home,
		Host:       os.Args[1],
		Sender:     os.Args[2],
		Recipients: os.Args[3:],
		Message:    os.Stdin,
		Size:       remote.FileSize(os.Stdin),
	}
	remote.Run(d, os.Stdout)
}
