package pop3

import (
	"io"
	"time"
)

// timedConn gives every read and write of a connection its own deadline,
// like qmail's timeoutread and timeoutwrite, where the connection has
// deadlines (sockets, TLS, non-blocking pipes).
type timedConn struct {
	rw      io.ReadWriter
	timeout time.Duration
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }
type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

func newTimedConn(rw io.ReadWriter, timeout time.Duration) *timedConn {
	return &timedConn{rw: rw, timeout: timeout}
}

func (c *timedConn) Read(p []byte) (int, error) {
	if d, ok := c.rw.(readDeadliner); ok {
		d.SetReadDeadline(time.Now().Add(c.timeout))
	}
	return c.rw.Read(p)
}

func (c *timedConn) Write(p []byte) (int, error) {
	if d, ok := c.rw.(writeDeadliner); ok {
		d.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	return c.rw.Write(p)
}

// TimeoutFromEnv reads $POP3TIMEOUT, a goqmail addition: the idle timeout
// in seconds of qmail-popup and qmail-pop3d; qmail's 1200 seconds when
// unset, empty or not a positive number.
func TimeoutFromEnv(lookup func(string) (string, bool)) time.Duration {
	v, _ := lookup("POP3TIMEOUT")
	n, digits := scanUlong(v)
	if digits == 0 || n == 0 || n > 1<<31 {
		n = DefaultTimeout
	}
	return time.Duration(n) * time.Second
}
