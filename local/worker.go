package local

import (
	"bufio"
	"net"
	"os"
	"syscall"

	"github.com/goqmail/goqmail/internal/worker"
)

// ServeWorker is "qmail-local --worker" (internal/worker): one process
// that carries out, one after another, the deliveries qmail-lspawn would
// otherwise start a qmail-local for, with the same arguments, descriptors,
// environment, ids and exit codes. Each delivery changes to its home
// directory, as qmail-local does. Maildir names stay unique because the
// deliveries share one namer (TIME.PID_SEQ.HOST).
func ServeWorker(conn *net.UnixConn, qmailHome string) error {
	syscall.Umask(0o077)
	host, _ := os.Hostname()
	namer := NewMaildirNamer(os.Getpid(), host)
	buffer := bufio.NewWriterSize(nil, 64<<10)
	environ := os.Environ()
	return worker.Serve(conn, func(req *worker.Request) int {
		d := &Delivery{
			QmailHome: qmailHome,
			Message:   req.Stdin,
			Stdout:    req.Out,
			Stderr:    req.Out,
			Environ:   environ,
			Hostname:  host,
			Namer:     namer,
			Exit:      req.Exit,
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
