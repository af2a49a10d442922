// Command qmail-pop3d serves a maildir over POP3 (qmail-pop3d(8)), run by
// checkpassword in the user's home after qmail-popup:
//
//	qmail-popup host checkpassword qmail-pop3d Maildir
//
// It refuses to run as root. $POP3TIMEOUT sets the idle timeout (seconds,
// default 1200). See docs/pop3.md.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/pop3"
	"github.com/goqmail/goqmail/smtpd"
)

func main() {
	signal.Ignore(syscall.SIGPIPE)
	if os.Getuid() == 0 {
		// A root login would make every password guess a root guess.
		fmt.Fprintf(os.Stderr, "qmail-pop3d invoked as uid 0, terminating\n")
		os.Exit(1)
	}
	conn := smtpd.StdioConn()
	dir := ""
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if dir == "" {
		fmt.Fprintf(os.Stdout, "-ERR %v\r\n", pop3.ErrNoMaildir)
		os.Exit(0)
	}
	pop3.ServeMaildir(conn, dir, pop3.TimeoutFromEnv(os.LookupEnv))
	os.Exit(0)
}
