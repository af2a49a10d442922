// Command qmail-queue puts one message into the queue (qmail-queue(8)):
// the message on fd 0, the envelope on fd 1, the outcome in the exit
// code only. It runs setuid qmailq on a real installation, so it reads
// nothing from the environment but what control.Home allows.
//
// "qmail-queue --writer", with a socket on fd 3, is the long-running
// queue writer of the standalone qmail-smtpd (queue.ServeWriter).
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/bugexit"
	"github.com/goqmail/goqmail/internal/timerslack"
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
	if len(os.Args) == 2 && os.Args[1] == queue.WriterArg {
		timerslack.Ensure()
		os.Exit(serveWriter())
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
	// bugexit, not os/signal.Notify: no thread is started to wait for
	// signals that never come.
	if bugexit.Catch(syscall.SIGILL, syscall.SIGABRT, syscall.SIGFPE, syscall.SIGBUS, syscall.SIGSYS) != nil {
		os.Exit(queue.ExitBug)
	}
	// The self-destruct does not clean up: what it leaves is in state S2
	// or S3, which the cleanup reaps once it is older than the 24 hours.
	time.AfterFunc(queue.Lifetime, func() { os.Exit(queue.ExitTimeout) })

	msg := os.NewFile(0, "message")
	env := os.NewFile(1, "envelope")
	_, err := queue.Enqueue(".", msg, env, sub)
	os.Exit(queue.ExitCode(err))
}

// serveWriter runs the writer mode on the socket of fd 3 until the server
// closes it. It exits 0 then, 111 when fd 3 is no socket of ours.
func serveWriter() int {
	// A server stopping by a signal to its process group lets the
	// messages under way finish: the writer ends when the socket closes.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP,
		syscall.SIGQUIT, syscall.SIGXFSZ, syscall.SIGXCPU, syscall.SIGVTALRM, syscall.SIGPROF)
	f := os.NewFile(3, "writer socket")
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "qmail-queue: writer: fd 3: %v\n", err)
		return 111
	}
	conn, ok := fc.(*net.UnixConn)
	if !ok {
		fmt.Fprintln(os.Stderr, "qmail-queue: writer: fd 3 is not a unix socket")
		return 111
	}
	if err := queue.ServeWriter(".", conn, os.Getpid()); err != nil {
		fmt.Fprintf(os.Stderr, "qmail-queue: writer: %v\n", err)
		return 111
	}
	return 0
}
