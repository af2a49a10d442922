package tcpserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/logbuf"
)

// Handler serves one connection with its environment (see Server).
type Handler = func(conn net.Conn, env map[string]string)

// UsageError is a wrong command line: Main exits 100 for it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Main is the standalone mode of a server program (qmail-smtpd,
// qmail-qmtpd, qmail-qmqpd, qmail-popup): it parses the listener options
// with defaultUser as the account to run as, binds every --listen
// address (and drops privileges, see Options.Listen), changes to the qmail
// home, builds the connection handler from the arguments left after the
// options, and serves until TERM or INT, which stop it as Server.Serve
// describes (the -grace option sets the grace period). Its log lines,
// the server's and the handler's (newHandler's log) go to stderr in
// batches (internal/logbuf). It returns the exit code: 100 for a bad
// command line, 111 for any other trouble, 0 after a stop.
func Main(name, defaultUser string, args []string, stderr io.Writer,
	newHandler func(home string, args []string, log io.Writer) (Handler, error)) int {
	// Whatever is pending is written before Main returns.
	log := logbuf.New(stderr, logbuf.Delay)
	defer log.Flush()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(log)
	var opts Options
	opts.AddFlags(fs, defaultUser)
	if err := fs.Parse(args); err != nil {
		return 100
	}
	fail := func(err error) int {
		var usage *UsageError
		if errors.As(err, &usage) {
			fmt.Fprintf(log, "%s: usage: %v\n", name, err)
			return 100
		}
		fmt.Fprintf(log, "%s: fatal: %v\n", name, err)
		return 111
	}
	home := control.Home()
	handler, err := newHandler(home, fs.Args(), log)
	if err != nil {
		return fail(err)
	}
	lns, err := opts.Listen(name, log)
	if err != nil {
		return fail(err)
	}
	if err := os.Chdir(home); err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv := opts.Server(name, log, os.Environ())
	srv.Handler = handler
	if err := srv.Serve(ctx, lns); err != nil {
		return fail(err)
	}
	return 0
}
