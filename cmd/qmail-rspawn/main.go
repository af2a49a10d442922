// Command qmail-rspawn runs remote deliveries for qmail-send through
// qmail-remote, or $QMAILREMOTE (qmail-rspawn(8)).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/timerslack"
	"github.com/goqmail/goqmail/internal/worker"
	"github.com/goqmail/goqmail/send/spawn"
)

func main() {
	timerslack.Ensure()
	home := control.Home()
	messDir := filepath.Join(home, "queue", "mess")
	st, err := os.Stat(messDir)
	if err != nil {
		os.Exit(111)
	}
	spawn.CleanTCPTO(filepath.Join(home, "queue", "lock", "tcpto"))
	srv := &spawn.Server{
		MessDir:   messDir,
		MessOwner: int(st.Sys().(*syscall.Stat_t).Uid),
		Channel:   &spawn.Remote{Program: spawn.RemoteProgram(home, os.Getenv("QMAILREMOTE"))},
		// qmail-remote runs as long-running workers, one per delivery
		// under way, not once per delivery; a wrapper installed in its
		// place still runs once per delivery.
		Workers: worker.NewPool(os.Stderr, worker.DefaultIdleTimeout, worker.RemoteMaxIdle, worker.RemotePerWorker),
	}
	err = srv.Serve(os.Stdin, os.Stdout)
	srv.Workers.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "qmail-rspawn: %v\n", err)
		os.Exit(111)
	}
}
