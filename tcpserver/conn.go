package tcpserver

import (
	"net"
	"sync"
	"time"
)

// DefaultGrace is how long a stopping server lets running sessions go on
// before it closes their connections (the -grace option). tcpserver
// itself exits at once on TERM and leaves its children running; one
// process cannot do that, so the wait is bounded instead, short enough
// for a supervised restart and long enough for a message being sent.
const DefaultGrace = 10 * time.Second

// forcedWriteLimit bounds every write once the grace period is over, so
// that a client that stopped reading cannot hold the shutdown.
const forcedWriteLimit = 5 * time.Second

// Conn is a TCP connection served by Server. It is a *net.TCPConn (File
// and SyscallConn still work, so the descriptor can be given to a child)
// plus Hold, which keeps the server from closing it while a session
// commits something it must report to the client.
type Conn struct {
	*net.TCPConn

	// commit is held by the session between the point where something
	// became final (qmail-queue exited 0) and its reply being written.
	commit sync.Mutex

	mu       sync.Mutex
	draining bool
	limit    time.Time // latest write deadline while draining
}

// Holder is what a handler looks for on its connection: Hold keeps the
// server from closing the connection until the returned release is
// called. A session holds it from before qmail-queue's exit status is
// known until its reply has been written.
type Holder interface {
	Hold() (release func())
}

// Hold implements Holder.
func (c *Conn) Hold() func() {
	c.commit.Lock()
	return c.commit.Unlock
}

// SetWriteDeadline sets the write deadline, never later than the limit
// of a forced close.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.TCPConn.SetWriteDeadline(c.clamp(t))
}

// SetDeadline sets both deadlines, the write one clamped as above.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.TCPConn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *Conn) clamp(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining && (t.IsZero() || t.After(c.limit)) {
		return c.limit
	}
	return t
}

// forceClose ends the connection at the end of the grace period: writes
// get a short deadline, then, once no commit is in progress, the socket
// is shut down in both directions (which also reaches a child holding a
// copy of the descriptor, e.g. qmail-pop3d) and closed.
func (c *Conn) forceClose() {
	c.mu.Lock()
	c.draining = true
	c.limit = time.Now().Add(forcedWriteLimit)
	c.mu.Unlock()
	c.TCPConn.SetWriteDeadline(c.limit)
	c.commit.Lock()
	defer c.commit.Unlock()
	c.TCPConn.CloseRead()
	c.TCPConn.CloseWrite()
	c.TCPConn.Close()
}
