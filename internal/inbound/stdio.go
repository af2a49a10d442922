package inbound

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// StdioConn returns the connection a server talks on when started by
// tcpserver: fd 0 for reading and fd 1 for writing. When fd 0 is a socket
// the result is a net.Conn (so STARTTLS and deadlines work); otherwise
// (pipes, tests, inetd-style wrappers) it reads fd 0 and writes fd 1 with
// deadlines where the descriptors allow them.
func StdioConn() io.ReadWriter {
	if c, err := net.FileConn(os.Stdin); err == nil {
		// fd 1 is normally the same socket; writes go through the
		// duplicate, and fd 0 and 1 stay open until exit.
		return c
	}
	// Non-blocking descriptors let the runtime poller enforce deadlines.
	syscall.SetNonblock(0, true)
	syscall.SetNonblock(1, true)
	return &stdioConn{in: os.NewFile(0, "stdin"), out: os.NewFile(1, "stdout")}
}

type stdioConn struct{ in, out *os.File }

func (c *stdioConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *stdioConn) Write(p []byte) (int, error) { return c.out.Write(p) }

func (c *stdioConn) SetReadDeadline(t time.Time) error  { return c.in.SetReadDeadline(t) }
func (c *stdioConn) SetWriteDeadline(t time.Time) error { return c.out.SetWriteDeadline(t) }
