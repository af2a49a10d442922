package qmtp

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/inbound"
	"github.com/goqmail/goqmail/queue"
)

// Exit codes of qmail-qmtpd and qmail-qmqpd.
const (
	ExitOK        = 0   // the client went away, or the (last) message is done
	ExitProtocol  = 100 // malformed netstring framing ("badproto")
	ExitResources = 111 // out of resources, timeout, unreadable controls
)

// ConnectionTimeout is qmail's alarm(3600): the longest a QMTP or QMQP
// connection may last, from start to end.
const ConnectionTimeout = 3600 * time.Second

// MaxEnvelope bounds the memory one message's addresses may take (the
// recipient netstrings of QMTP, the addresses of QMQP). qmail has no such
// bound; a client exceeding it gets exit 111, like qmail out of memory.
const MaxEnvelope = 16 << 20

// maxAddress is qmail's buffer for one address: an address of this many
// bytes or more is refused, not stored.
const maxAddress = 1000

// Queue is one submission to qmail-queue: *queue.Client in production.
type Queue interface {
	io.Writer
	Pid() int
	Fail(err error)
	Close(sender string, recipients []string) error
}

// Config is what a QMTP or QMQP connection runs with.
type Config struct {
	Env       inbound.Environ    // tcp-environ variables and RELAYCLIENT
	DataBytes int64              // QMTP only: control/databytes or $DATABYTES; 0 = no limit
	RcptHosts *inbound.RcptHosts // QMTP only: nil = every domain (no rcpthosts file)
	OpenQueue func() (Queue, error)
	Timeout   time.Duration    // whole-connection limit; 0 = ConnectionTimeout
	Now       func() time.Time // nil = time.Now
	// Hold keeps a stopping listener from closing the connection until
	// release is called (tcpserver.Holder); it is taken before
	// qmail-queue's status is known and released once the reply is
	// written. nil when nothing can close the connection under us.
	Hold func() (release func())
}

// LoadConfig reads the control files of home (rcpthosts, morercpthosts.cdb,
// databytes) and the environment through lookup, as qmail-qmtpd does at
// start; qmail-qmqpd uses only the environment and the queue.
func LoadConfig(home string, lookup inbound.LookupEnv) (*Config, error) {
	files, err := control.Open(home)
	if err != nil {
		return nil, err
	}
	cfg := &Config{Env: inbound.ReadEnviron(lookup)}
	if cfg.RcptHosts, err = inbound.LoadRcptHosts(files); err != nil {
		return nil, err
	}
	databytes, err := files.Int("databytes", 0)
	if err != nil {
		return nil, err
	}
	cfg.DataBytes = int64(databytes)
	if v, ok := lookup("DATABYTES"); ok {
		n, _ := control.ScanUlong(v)
		cfg.DataBytes = int64(n)
	}
	cfg.OpenQueue = func() (Queue, error) { return queue.Open(home) }
	return cfg, nil
}

// Close releases what LoadConfig opened (morercpthosts.cdb), for a
// process that serves many connections.
func (c *Config) Close() error { return c.RcptHosts.Close() }

func (c *Config) hold() (release func()) {
	if c.Hold == nil {
		return func() {}
	}
	return c.Hold()
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// received is the header line a server adds above each message: qmail's
// received() without a HELO name.
func (c *Config) received(protocol string) string {
	e := c.Env
	return inbound.Received(protocol, e.Local, e.RemoteIP, e.RemoteHost, e.RemoteInfo, e.HasRemoteInfo, "", false, c.now())
}

// openQueue starts a submission. A queue program that cannot be executed
// is, as in qmail, reported to the client at the end of the message
// ("Zunable to exec qq"), so the message is still read.
func (c *Config) openQueue() (Queue, error) {
	q, err := c.OpenQueue()
	var qerr *queue.Error
	if errors.As(err, &qerr) {
		return &failedQueue{err: qerr}, nil
	}
	return q, err
}

// failedQueue swallows a message whose queue program never started.
type failedQueue struct{ err *queue.Error }

func (f *failedQueue) Write(p []byte) (int, error)  { return len(p), nil }
func (f *failedQueue) Pid() int                     { return 0 }
func (f *failedQueue) Fail(error)                   {}
func (f *failedQueue) Close(string, []string) error { return f.err }

// setDeadline applies the connection limit where the connection supports
// deadlines (sockets, and pipes opened non-blocking).
func setDeadline(conn any, d time.Time) {
	type readDeadliner interface{ SetReadDeadline(time.Time) error }
	type writeDeadliner interface{ SetWriteDeadline(time.Time) error }
	if c, ok := conn.(readDeadliner); ok {
		c.SetReadDeadline(d)
	}
	if c, ok := conn.(writeDeadliner); ok {
		c.SetWriteDeadline(d)
	}
}

// exitCode maps the error that ended a connection to qmail's exit code:
// framing errors 100, resource trouble and timeouts 111, and a client
// that went away (end of input, read or write failure) 0.
func exitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrMalformed):
		return ExitProtocol
	case errors.Is(err, ErrTooLong), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, errResources):
		return ExitResources
	}
	return ExitOK
}

// errResources marks failures qmail reports with exit 111.
var errResources = errors.New("out of resources")
