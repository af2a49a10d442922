package smtpd

import (
	"io"

	"github.com/goqmail/goqmail/internal/inbound"
)

// StdioConn returns the connection qmail-smtpd talks on when started by
// tcpserver: fd 0 for reading and fd 1 for writing (see
// inbound.StdioConn). When fd 0 is a socket it is a net.Conn, so that
// STARTTLS and deadlines work.
func StdioConn() io.ReadWriter { return inbound.StdioConn() }
