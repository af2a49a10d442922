// Command qmail-lspawn runs local deliveries for qmail-send:
// qmail-lspawn defaultdelivery (qmail-lspawn(8)).
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
	"github.com/goqmail/goqmail/users"
)

func main() {
	timerslack.Ensure()
	if len(os.Args) < 2 {
		os.Exit(100)
	}
	home := control.Home()
	messDir := filepath.Join(home, "queue", "mess")
	owner, err := ownerOf(messDir)
	if err != nil {
		os.Exit(111)
	}
	chain := &users.Chain{Home: home}
	asRoot := os.Getuid() == 0
	if !asRoot {
		// An unprivileged home has no alias account: the caller
		// delivers, with ~alias = $QMAILHOME/alias.
		if chain.Alias, err = users.CallerAlias(home); err != nil {
			os.Exit(111)
		}
		// Nor can it deliver as another user: of the password
		// database only the caller's own account counts.
		chain.Accounts = users.OwnAccount{UID: os.Getuid()}
	}
	srv := &spawn.Server{
		MessDir:   messDir,
		MessOwner: owner,
		Channel: &spawn.Local{
			Home:           home,
			DefaultDeliver: os.Args[1],
			Users:          spawn.Users{Chain: chain},
			AsRoot:         asRoot,
		},
		// qmail-local runs as one worker per recipient account and
		// delivery under way, not once per delivery.
		Workers: worker.NewPool(os.Stderr, worker.DefaultIdleTimeout, worker.LocalMaxIdle, worker.LocalPerWorker),
	}
	err = srv.Serve(os.Stdin, os.Stdout)
	srv.Workers.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "qmail-lspawn: %v\n", err)
		os.Exit(111)
	}
}

// ownerOf is the uid owning the queue: qmailq, the only account allowed to
// write message files.
func ownerOf(path string) (int, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return int(st.Sys().(*syscall.Stat_t).Uid), nil
}
