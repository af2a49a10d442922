// Command qmail-send is qmail's queue manager (qmail-send(8)). It is
// started by qmail-start, which sets up its descriptors: 0 log, 1/2
// qmail-lspawn, 3/4 qmail-rspawn, 5/6 qmail-clean.
package main

import (
	"os"
	"os/signal"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/timerslack"
	"github.com/goqmail/goqmail/send"
	"golang.org/x/sys/unix"
)

func main() {
	timerslack.Ensure()
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, unix.SIGTERM, unix.SIGALRM, unix.SIGHUP)
	signal.Ignore(unix.SIGPIPE)
	fd := func(n uintptr) *os.File { return os.NewFile(n, "fd") }
	cfg := send.Config{
		Home:         control.Home(),
		Log:          fd(0),
		Clean:        fd(5),
		CleanReplies: fd(6),
		Signals:      signals,
	}
	cfg.Spawn[0], cfg.SpawnReplies[0] = fd(1), fd(2)
	cfg.Spawn[1], cfg.SpawnReplies[1] = fd(3), fd(4)
	if err := send.Run(cfg); err != nil {
		os.Exit(111)
	}
}
