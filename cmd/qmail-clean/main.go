// Command qmail-clean removes queue files for qmail-send (qmail-clean(8)):
// commands "foop/N" and "todo/N", NUL-terminated, on fd 0; one reply byte
// each on fd 1. It exits 0 at the end of its input, 100 when it cannot
// reply, 111 when it cannot reach the queue.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/timerslack"
	"github.com/goqmail/goqmail/queue"
)

func main() {
	timerslack.Ensure()
	if err := os.Chdir(control.Home()); err != nil {
		os.Exit(111)
	}
	if err := os.Chdir("queue"); err != nil {
		os.Exit(111)
	}
	signal.Ignore(syscall.SIGPIPE)
	c := &queue.Cleaner{Dir: "."}
	if err := c.Serve(os.Stdin, os.Stdout); err != nil {
		os.Exit(100)
	}
}
