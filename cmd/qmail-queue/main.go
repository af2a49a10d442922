// Command qmail-queue puts one message into the queue (qmail-queue(8)):
// the message on fd 0, the envelope on fd 1, the outcome in the exit
// code only. It runs setuid qmailq on a real installation, so it reads
// nothing from the environment but what control.Home allows.
package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/queue"
)

func main() {
	defer func() {
		if recover() != nil {
			os.Exit(queue.ExitBug)
		}
	}()
	syscall.Umask(0o033)
	if err := os.Chdir(control.Home()); err != nil {
		os.Exit(queue.ExitHome)
	}
	if err := os.Chdir("queue"); err != nil {
		os.Exit(queue.ExitQueueDir)
	}
	uid := os.Getuid()
	sub := queue.Submission{
		UID:     uid,
		Account: queue.LookupAccount(uid),
		PID:     os.Getpid(),
		Start:   time.Now(),
	}
	signal.Ignore(syscall.SIGPIPE, syscall.SIGVTALRM, syscall.SIGPROF, syscall.SIGQUIT,
		syscall.SIGINT, syscall.SIGHUP, syscall.SIGXCPU, syscall.SIGXFSZ)
	bugs := make(chan os.Signal, 1)
	signal.Notify(bugs, syscall.SIGILL, syscall.SIGABRT, syscall.SIGFPE, syscall.SIGBUS, syscall.SIGSYS)
	go func() {
		<-bugs
		os.Exit(queue.ExitBug)
	}()
	// The self-destruct does not clean up: what it leaves is in state S2
	// or S3, which the cleanup reaps once it is older than the 24 hours.
	time.AfterFunc(queue.Lifetime, func() { os.Exit(queue.ExitTimeout) })

	msg := os.NewFile(0, "message")
	env := os.NewFile(1, "envelope")
	_, err := queue.Enqueue(".", msg, env, sub)
	os.Exit(queue.ExitCode(err))
}
