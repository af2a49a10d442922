package pop3

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"github.com/goqmail/goqmail/tcpserver"
)

// PopupListener runs the qmail-popup sessions of a standalone listener
// (qmail-popup --listen): ServeConn is the tcpserver.Server handler. Each
// connection is configured from the environment the server built for it
// ($POP3S, $POP3TIMEOUT, a tcprules entry), and its checkpassword chain
// runs with that environment and the connection itself on fd 0 and 1,
// as under tcpserver.
type PopupListener struct {
	Hostname      string   // the name in the greeting's timestamp
	CertPath      string   // control/servercert.pem
	CheckPassword []string // checkpassword program, then what it runs
	Log           io.Writer
	Name          string // the program name prefixing log lines

	sessions atomic.Int64
}

// ServeConn serves one POP3 connection. The greeting's timestamp uses a
// session number where qmail-popup uses its pid: every connection of the
// listener shares one pid, and APOP needs distinct timestamps.
func (l *PopupListener) ServeConn(conn net.Conn, env map[string]string) {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	_, pop3s := env["POP3S"]
	p := &Popup{
		Hostname:    l.Hostname,
		Timeout:     TimeoutFromEnv(lookup),
		CertPath:    l.CertPath,
		ImplicitTLS: pop3s,
		Login:       ExecCheckpasswordEnv(l.CheckPassword, tcpserver.EnvList(env)),
		Pid:         int(l.sessions.Add(1)),
	}
	if err := p.Serve(conn); err != nil && !errors.Is(err, io.EOF) && l.Log != nil {
		// Error texts can quote client bytes: %q keeps the line one line.
		fmt.Fprintf(l.Log, "%s: %s: %q\n", l.Name, env["TCPREMOTEIP"], err.Error())
	}
}
