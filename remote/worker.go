package remote

import (
	"net"
	"os"
	"time"

	"github.com/goqmail/goqmail/internal/worker"
)

// ConnIdleTimeout is how long a worker keeps a connection open after a
// delivery for the next delivery to the same destination.
const ConnIdleTimeout = 5 * time.Second

// maxIdleConns bounds the connections one worker keeps open.
const maxIdleConns = 4

// ServeWorker is "qmail-remote --worker" (internal/worker): one process
// that carries out, one after another, the deliveries qmail-rspawn would
// otherwise start a qmail-remote for, with the same arguments,
// descriptors, reports and exit code (always 0). Between deliveries it
// keeps the SMTP connection of a successful delivery open for a while
// (ConnCache), and QUITs those still open when the spawner ends it.
func ServeWorker(conn *net.UnixConn, home string) error {
	conns := NewConnCache(ConnIdleTimeout, maxIdleConns)
	defer conns.Close()
	ipme := &LocalAddrs{}
	settings := NewSettingsCache(home)
	defer settings.Close()
	pid := os.Getpid()
	deliveries := 0
	return worker.Serve(conn, worker.RemotePerWorker, func(req *worker.Request) int {
		// Separate runs of qmail-remote have different pids, which
		// spread their lock/tcpto back-off windows; so do a worker's
		// deliveries.
		prog := &Program{Home: home, Pid: pid + deliveries, Conns: conns, LocalAddrs: ipme, Settings: settings}
		deliveries++
		prog.Deliver(req.Args, req.Stdin, req.Out)
		return 0
	})
}
