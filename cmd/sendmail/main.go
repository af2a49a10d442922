// Command sendmail is the sendmail-compatible interface to qmail: it runs
// qmail-inject, qmail-qread (mailq) or qmail-smtpd (-bs).
package main

import (
	"os"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/inject"
)

func main() {
	os.Exit(inject.RunSendmail(inject.Sendmail{
		Args:    os.Args,
		Environ: os.Environ(),
		Home:    control.Home(),
		Stderr:  os.Stderr,
		Chdir:   os.Chdir,
		Exec:    syscall.Exec,
	}))
}
