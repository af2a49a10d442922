package remote

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ConnCache keeps the SMTP connections of successful deliveries open
// for the next delivery to the same destination, in a long-running
// qmail-remote (ServeWorker). qmail ends every connection with QUIT
// after one message; a delivery that finds a connection here skips the
// connect, greeting, EHLO, STARTTLS and AUTH and starts with MAIL FROM
// (a completed transaction leaves the session ready for the next one,
// RFC 5321 4.1.1.5: no RSET). A connection is kept only after a
// delivery the peer accepted with nothing gone wrong, and for at most
// the idle time; then, or when the cache is closed, it is ended with
// QUIT. It is safe for concurrent use.
type ConnCache struct {
	idle time.Duration
	max  int

	mu     sync.Mutex
	conns  []*cachedConn // oldest first
	closed bool
}

// connKey is everything a kept connection was set up with that a
// delivery must share to use it: the address and port connected to, the
// exchanger's name (tlshosts/), the HELO name, the smtproutes route
// with its AUTH login, and whether TLS started with the connection.
type connKey struct {
	addr     string
	fqdn     string
	helohost string
	route    Route
	implicit bool
}

// cachedConn is an open SMTP session between transactions.
type cachedConn struct {
	key    connKey
	tcp    *deadlineConn // the TCP connection
	conn   net.Conn      // the transport: tcp, or TLS over it
	r      *bufio.Reader
	w      *bufio.Writer
	tlsOn  bool
	policy tlsPolicy // the tlshosts/ verdict the session was set up under
	ehlo   []string  // the EHLO keywords
	authed bool      // logged in: MAIL FROM carries AUTH=
	timer  *time.Timer
}

// NewConnCache keeps at most max connections, each for at most idle.
func NewConnCache(idle time.Duration, max int) *ConnCache {
	return &ConnCache{idle: idle, max: max}
}

// take removes and returns the connection kept for key, if any.
func (c *ConnCache) take(key connKey) *cachedConn {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, cc := range c.conns {
		if cc.key == key {
			c.conns = append(c.conns[:i], c.conns[i+1:]...)
			cc.timer.Stop()
			return cc
		}
	}
	return nil
}

// has reports whether a connection is kept for key.
func (c *ConnCache) has(key connKey) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.conns {
		if cc.key == key {
			return true
		}
	}
	return false
}

// put keeps cc for the idle time. When the cache is full, the oldest
// connection is ended to make room.
func (c *ConnCache) put(cc *cachedConn) {
	var evicted *cachedConn
	c.mu.Lock()
	if c.closed || c.max <= 0 {
		c.mu.Unlock()
		cc.quit()
		return
	}
	if len(c.conns) >= c.max {
		evicted = c.conns[0]
		evicted.timer.Stop()
		c.conns = c.conns[1:]
	}
	cc.timer = time.AfterFunc(c.idle, func() { c.expire(cc) })
	c.conns = append(c.conns, cc)
	c.mu.Unlock()
	if evicted != nil {
		evicted.quit()
	}
}

// expire ends cc when its idle time is over, unless a delivery has
// taken it in the meantime.
func (c *ConnCache) expire(cc *cachedConn) {
	c.mu.Lock()
	found := false
	for i, kept := range c.conns {
		if kept == cc {
			c.conns = append(c.conns[:i], c.conns[i+1:]...)
			found = true
			break
		}
	}
	c.mu.Unlock()
	if found {
		cc.quit()
	}
}

// Close ends every kept connection with QUIT; connections offered later
// are ended at once.
func (c *ConnCache) Close() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.closed = true
	c.mu.Unlock()
	for _, cc := range conns {
		cc.timer.Stop()
		cc.quit()
	}
}

// quitTimeout bounds the QUIT that ends a kept connection: the worker
// may be ending, and nothing waits for the answer anyway.
const quitTimeout = 5 * time.Second

// quit ends the session as qmail does, without waiting for the answer.
func (cc *cachedConn) quit() {
	cc.tcp.timeout = min(cc.tcp.timeout, quitTimeout)
	cc.w.WriteString("QUIT\r\n")
	cc.w.Flush()
	cc.tcp.Close()
}

// quiet reports whether nothing has arrived on the kept connection
// since its last transaction: no buffered input, and, when the socket
// can be asked without reading, neither data nor end of file waiting.
// Anything there (a 421 before the peer hung up, its end of file) means
// the peer is ending the session, and the connection is not used.
func (cc *cachedConn) quiet() bool {
	if cc.r.Buffered() > 0 {
		return false
	}
	sc, ok := cc.tcp.Conn.(syscall.Conn)
	if !ok {
		return true // found out at MAIL FROM instead
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	waiting := false
	var peekErr error
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
		case err != nil:
			peekErr = err
		default:
			waiting = n >= 0 // data, or 0: end of file
		}
		return true // never wait
	})
	return err == nil && peekErr == nil && !waiting
}
