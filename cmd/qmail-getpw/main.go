// Command qmail-getpw finds the account in charge of a local part in the
// password database (qmail-getpw(8)): given the local part as its first
// argument it prints user, uid, gid, home, dash and ext, each followed by
// NUL. Exit codes: 100 without an argument, 116 without an alias user,
// 115 or 118 for temporary failures; it prints nothing on failure, as
// qmail-lspawn reads its output.
//
// Under an unprivileged $QMAILHOME the alias account is the caller with
// home $QMAILHOME/alias (see users.DefaultAlias).
package main

import (
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/users"
)

func main() {
	if len(os.Args) < 2 {
		os.Exit(100)
	}
	alias, err := users.DefaultAlias(control.Home())
	if err != nil {
		os.Exit(users.ExitSys)
	}
	e, err := users.GetPW(users.SystemAccounts{}, os.Args[1], alias)
	if err != nil {
		os.Exit(users.ExitCode(err))
	}
	if _, err := os.Stdout.Write(e.Record()); err != nil {
		os.Exit(111)
	}
}
