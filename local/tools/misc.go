package tools

import (
	"path/filepath"
	"strings"
	"syscall"

	"github.com/goqmail/goqmail/local"
)

// Datemail is datemail(1): sendmail with a Date: line added by predate,
// i.e. it runs "predate sendmail args..." from the qmail home's bin.
func Datemail(args []string, p IO) int {
	predate := filepath.Join(p.QmailHome, "bin", "predate")
	argv := append([]string{predate, filepath.Join(p.QmailHome, "bin", "sendmail")}, args...)
	err := syscall.Exec(predate, argv, p.Env)
	return p.die(111, "datemail: fatal: unable to run ", predate, ": ", local.ErrText(err))
}

// Mailsubj is mailsubj(1): send stdin as the body of a message with the
// given subject to the recipients, through qmail-inject.
func Mailsubj(args []string, p IO) int {
	if len(args) < 1 {
		return p.die(100, "mailsubj: usage: mailsubj subject recipient ...")
	}
	header := "Subject: " + args[0] + "\n" +
		strings.TrimRight("To: "+strings.Join(args[1:], " "), " ") + "\n\n"
	inject := filepath.Join(p.QmailHome, "bin", "qmail-inject")
	return pipeInto(p, "mailsubj: fatal: ", []string{inject}, header, false, func(err error) int {
		return p.die(111, "mailsubj: fatal: unable to run ", inject, ": ", local.ErrText(err))
	})
}
