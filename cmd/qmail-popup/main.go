// Command qmail-popup reads a POP3 user name and password and runs the
// checkpassword chain (qmail-popup(8)), under tcpserver:
//
//	tcpserver 0 110 qmail-popup host.example checkpassword qmail-pop3d Maildir
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
)

func main() {
	signal.Ignore(syscall.SIGPIPE)
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
		fmt.Fprintf(os.Stderr, "qmail-popup: %v\n", err)
	}
	os.Exit(1)
}
