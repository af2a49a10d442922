// Command qmail-popup reads a POP3 user name and password and runs the
// checkpassword chain (qmail-popup(8)).
//
// Under tcpserver, one process per connection, the socket on fd 0 and 1:
//
//	tcpserver 0 110 qmail-popup host.example checkpassword qmail-pop3d Maildir
//
// As a standalone listener, one process for all connections (see
// docs/tcpserver.md for the options; the chain gets the connection on
// fd 0 and 1 as under tcpserver):
//
//	qmail-popup --listen ADDR [--listen ADDR...] [-x tcp.pop3.cdb] [-c limit]
//	    [-l localname] [-user root | -u uid -g gid] [-grace 10s]
//	    -- host.example checkpassword qmail-pop3d Maildir
//
// The listener stays root by default: checkpassword needs root to read
// the passwords and to become the user.
//
// Additions (docs/pop3.md): STLS and CAPA when control/servercert.pem
// exists, POP3S (TLS at connect) when $POP3S is set, and $POP3TIMEOUT.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/pop3"
	"github.com/goqmail/goqmail/smtpd"
	"github.com/goqmail/goqmail/tcpserver"
)

const name = "qmail-popup"

func main() {
	signal.Ignore(syscall.SIGPIPE)
	if tcpserver.ListenMode(os.Args[1:]) {
		os.Exit(listen(os.Args[1:]))
	}
	if len(os.Args) < 3 {
		io.WriteString(os.Stdout, "-ERR usage: popup hostname subprogram\r\n")
		os.Exit(1)
	}
	_, pop3s := os.LookupEnv("POP3S")
	p := &pop3.Popup{
		Hostname:    os.Args[1],
		Timeout:     pop3.TimeoutFromEnv(os.LookupEnv),
		CertPath:    filepath.Join(control.Home(), "control", "servercert.pem"),
		ImplicitTLS: pop3s,
		Login:       pop3.ExecCheckpassword(os.Args[2:]),
		Pid:         os.Getpid(),
	}
	if err := p.Serve(smtpd.StdioConn()); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	os.Exit(1)
}

func listen(args []string) int {
	return tcpserver.Main(name, "root", args, os.Stderr, func(home string, rest []string, log io.Writer) (tcpserver.Handler, error) {
		if len(rest) < 2 {
			return nil, &tcpserver.UsageError{Msg: name + " --listen ADDR [options] -- hostname subprogram..."}
		}
		sessions := &pop3.PopupListener{
			Hostname:      rest[0],
			CertPath:      filepath.Join(home, "control", "servercert.pem"),
			CheckPassword: rest[1:],
			Log:           log,
			Name:          name,
		}
		return sessions.ServeConn, nil
	})
}
