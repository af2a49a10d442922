package local

import (
	"bufio"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/goqmail/goqmail/internal/worker"
)

// ServeWorker is "qmail-local --worker" (internal/worker): one process
// that carries out the deliveries qmail-lspawn would otherwise start a
// qmail-local for, with the same arguments, descriptors, environment,
// ids and exit codes, up to worker.LocalPerWorker of them at a time: one
// process serves a busy account, not one per delivery under way. The
// deliveries share one namer, so that maildir names stay unique
// (TIME.PID_SEQ.HOST), and the copy buffers. None of them changes the
// working directory (Delivery.Run).
func ServeWorker(conn *net.UnixConn, qmailHome string) error {
	syscall.Umask(0o077)
	host, _ := os.Hostname()
	namer := NewMaildirNamer(os.Getpid(), host)
	buffers := sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}
	environ := os.Environ()
	return worker.Serve(conn, worker.LocalPerWorker, func(req *worker.Request) int {
		buffer := buffers.Get().(*bufio.Writer)
		defer buffers.Put(buffer)
		d := &Delivery{
			QmailHome: qmailHome,
			Message:   req.Stdin,
			Stdout:    req.Out,
			Stderr:    req.Out,
			Environ:   environ,
			Hostname:  host,
			Namer:     namer,
			Exit:      req.Abandon,
			Buffer:    buffer,
		}
		args, err := ParseArgs(req.Args)
		if err == nil {
			d.Args = args
			err = d.Run()
		}
		return d.report(err)
	})
}
