package qmtp

import (
	"fmt"
	"io"
	"os"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/inbound"
	"github.com/goqmail/goqmail/queue"
	"github.com/goqmail/goqmail/tcpserver"
)

// Protocol is the server a program runs.
type Protocol int

const (
	QMTP Protocol = iota // qmail-qmtpd
	QMQP                 // qmail-qmqpd
)

// Main is the whole of qmail-qmtpd and qmail-qmqpd: with --listen the
// standalone listener (tcpserver.Main); otherwise one session on fd 0/1
// under tcpserver, with the process environment. It returns the exit
// code.
func Main(name string, proto Protocol, args []string, stderr io.Writer) int {
	if tcpserver.ListenMode(args) {
		return tcpserver.Main(name, "qmaild", args, stderr, func(home string, rest []string, log io.Writer) (tcpserver.Handler, error) {
			if len(rest) != 0 {
				return nil, &tcpserver.UsageError{Msg: fmt.Sprintf("unexpected arguments: %q", rest)}
			}
			sessions := &Listener{Home: home, Log: log, Name: name}
			if proto == QMQP {
				return sessions.ServeQMQP, nil
			}
			return sessions.ServeQMTP, nil
		})
	}
	fatal := func(err error) int {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return ExitResources
	}
	home := control.Home()
	if err := os.Chdir(home); err != nil {
		return fatal(err)
	}
	var code int
	var err error
	switch proto {
	case QMQP:
		// QMQP relays for every client: no rcpthosts, no databytes.
		cfg := &Config{
			Env:       inbound.ReadEnviron(os.LookupEnv),
			OpenQueue: func() (Queue, error) { return queue.Open(home) },
		}
		code, err = ServeQMQP(inbound.StdioConn(), cfg)
	default:
		cfg, lerr := LoadConfig(home, os.LookupEnv)
		if lerr != nil {
			return fatal(lerr)
		}
		code, err = ServeQMTP(inbound.StdioConn(), cfg)
	}
	if err != nil && code != ExitOK {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	return code
}
