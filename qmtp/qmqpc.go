package qmtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goqmail/goqmail/queue"
)

// QMQPPort is the port qmail-qmqpc connects to.
const QMQPPort = 628

// Exit codes of qmail-qmqpc: qmail-queue's, so that it can stand in for
// qmail-queue ($QMAILQUEUE).
const (
	ExitQueued      = 0
	ExitPermanent   = 31 // the server answered D
	ExitNoMemory    = 51
	ExitReadFailed  = 54 // reading the message or envelope failed
	ExitNoServers   = 55 // control/qmqpservers missing, unreadable, or no usable server
	ExitNoSocket    = 56
	ExitNoHome      = 61
	ExitTemporary   = 71 // the server answered Z
	ExitConnTimeout = 72
	ExitConnRefused = 73
	ExitConnFailed  = 74 // the connection failed after it was made
	ExitBadEnvelope = 91
	// maxEnvelopeAddr bounds one envelope address read from fd 1.
	maxEnvelopeAddr = 64 << 10
	// maxReply bounds the server's reply netstring.
	maxReply = 4096
)

// ParseServers turns the lines of control/qmqpservers into addresses to
// dial. qmail takes IPv4 addresses; IPv6 addresses ("::1" or "[::1]") and
// an explicit port ("127.0.0.1:6280", "[::1]:6280") are goqmail
// additions. Lines that are none of these are skipped, as qmail skips
// lines that are not IP addresses.
func ParseServers(lines []string) []string {
	var servers []string
	for _, l := range lines {
		if ip, err := netip.ParseAddr(l); err == nil && ip.Zone() == "" {
			servers = append(servers, netip.AddrPortFrom(ip, QMQPPort).String())
			continue
		}
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			if ip, err := netip.ParseAddr(l[1 : len(l)-1]); err == nil && ip.Is6() && ip.Zone() == "" {
				servers = append(servers, netip.AddrPortFrom(ip, QMQPPort).String())
			}
			continue
		}
		if ap, err := netip.ParseAddrPort(l); err == nil && ap.Port() != 0 && ap.Addr().Zone() == "" {
			servers = append(servers, ap.String())
		}
	}
	return servers
}

// ReadEnvelope reads qmail-queue's envelope (fd 1): "F" sender NUL, "T"
// recipient NUL for each recipient, and a NUL. Failures are *ExitError:
// ExitBadEnvelope for format errors, ExitReadFailed for read errors,
// ExitNoMemory when the recipients exceed MaxEnvelope.
func ReadEnvelope(r io.Reader) (sender string, recipients []string, err error) {
	rr := queue.NewRecordReader(r, maxEnvelopeAddr)
	next := func() (queue.Record, error) {
		rec, err := rr.Next()
		switch {
		case err == nil:
			return rec, nil
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, queue.ErrRecordTooLong):
			return rec, &ExitError{Code: ExitBadEnvelope, Err: fmt.Errorf("envelope: %w", err)}
		}
		return rec, &ExitError{Code: ExitReadFailed, Err: fmt.Errorf("reading envelope: %w", err)}
	}
	rec, err := next()
	if err != nil {
		return "", nil, err
	}
	if rec.Type != 'F' {
		return "", nil, &ExitError{Code: ExitBadEnvelope, Err: errors.New("envelope does not start with F")}
	}
	sender = rec.Text
	size := 0
	for {
		rec, err := next()
		if err != nil {
			return "", nil, err
		}
		if rec.Type == 0 {
			return sender, recipients, nil
		}
		if rec.Type != 'T' {
			return "", nil, &ExitError{Code: ExitBadEnvelope, Err: fmt.Errorf("envelope record %q", rec.Type)}
		}
		if size += len(rec.Text) + 16; size > MaxEnvelope {
			return "", nil, &ExitError{Code: ExitNoMemory, Err: errors.New("envelope too large")}
		}
		recipients = append(recipients, rec.Text)
	}
}

// ExitError is a qmail-qmqpc failure with its exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return fmt.Sprintf("%v (exit %d)", e.Err, e.Code) }
func (e *ExitError) Unwrap() error { return e.Err }

// Message is the message a client sends: readable from the start as many
// times as servers are tried, without holding it in memory.
type Message struct {
	File   *os.File
	Offset int64 // where the message starts in File
	Size   int64
}

// SpoolMessage makes the message on f re-readable: a regular file is used
// in place, from its current offset to its end; anything else (a pipe) is
// copied to an unlinked temporary file in dir (os.TempDir() when empty).
func SpoolMessage(f *os.File, dir string) (*Message, error) {
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if off, err := f.Seek(0, io.SeekCurrent); err == nil && off <= st.Size() {
			return &Message{File: f, Offset: off, Size: st.Size() - off}, nil
		}
	}
	tmp, err := os.CreateTemp(dir, "qmqpc")
	if err != nil {
		return nil, &ExitError{Code: ExitReadFailed, Err: fmt.Errorf("spooling message: %w", err)}
	}
	os.Remove(tmp.Name())
	n, err := io.Copy(tmp, f)
	if err != nil {
		tmp.Close()
		return nil, &ExitError{Code: ExitReadFailed, Err: fmt.Errorf("reading message: %w", err)}
	}
	return &Message{File: tmp, Size: n}, nil
}

// Client sends one message by QMQP (qmail-qmqpc).
type Client struct {
	Servers        []string // host:port, tried in order
	ConnectTimeout time.Duration
	IOTimeout      time.Duration
}

// Send tries the servers in order until one takes the connection, and
// returns qmail-qmqpc's exit code: 0 when the server accepted the
// message, 31 or 71 for its permanent or temporary refusal, 74 when the
// connection broke; when no server could be reached, 72 or 73 for the
// last failure (55 when there was no server to try).
func (c *Client) Send(msg *Message, sender string, recipients []string) (int, error) {
	last := &ExitError{Code: ExitNoServers, Err: errors.New("no QMQP servers in control/qmqpservers")}
	for _, server := range c.Servers {
		conn, err := net.DialTimeout("tcp", server, c.ConnectTimeout)
		if err != nil {
			code := ExitConnRefused
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				code = ExitConnTimeout
			}
			last = &ExitError{Code: code, Err: err}
			continue
		}
		code, err := c.exchange(conn, msg, sender, recipients)
		conn.Close()
		return code, err
	}
	return last.Code, last
}

// exchange sends the request on an open connection and reads the reply.
func (c *Client) exchange(conn net.Conn, msg *Message, sender string, recipients []string) (int, error) {
	if _, err := msg.File.Seek(msg.Offset, io.SeekStart); err != nil {
		return ExitReadFailed, fmt.Errorf("rereading message: %w", err)
	}
	before := strconv.FormatInt(msg.Size, 10) + ":"
	after := AppendNetstring([]byte(","), sender)
	for _, r := range recipients {
		after = AppendNetstring(after, r)
	}
	total := int64(len(before)) + msg.Size + int64(len(after))
	dc := &deadlineConn{conn: conn, timeout: c.IOTimeout}
	w := bufio.NewWriterSize(dc, 16<<10)
	w.WriteString(strconv.FormatInt(total, 10) + ":" + before)
	n, err := io.Copy(w, io.LimitReader(msg.File, msg.Size))
	if err == nil && n != msg.Size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		if dc.err != nil {
			return ExitConnFailed, dc.err
		}
		return ExitReadFailed, fmt.Errorf("rereading message: %w", err)
	}
	w.Write(after)
	w.WriteString(",")
	if err := w.Flush(); err != nil {
		return ExitConnFailed, fmt.Errorf("sending to %s: %w", conn.RemoteAddr(), err)
	}
	reply, err := ReadNetstring(bufio.NewReader(dc), maxReply)
	if err != nil {
		return ExitConnFailed, fmt.Errorf("reply from %s: %w", conn.RemoteAddr(), err)
	}
	text := string(reply)
	switch {
	case strings.HasPrefix(text, "K"):
		return ExitQueued, nil
	case strings.HasPrefix(text, "Z"):
		return ExitTemporary, fmt.Errorf("%s: %s", conn.RemoteAddr(), text[1:])
	case strings.HasPrefix(text, "D"):
		return ExitPermanent, fmt.Errorf("%s: %s", conn.RemoteAddr(), text[1:])
	}
	return ExitConnFailed, fmt.Errorf("reply from %s: %q", conn.RemoteAddr(), text)
}

// deadlineConn gives each read and write its own timeout, as qmail's
// timeoutread and timeoutwrite do, and remembers the first failure.
type deadlineConn struct {
	conn    net.Conn
	timeout time.Duration
	err     error
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	d.conn.SetReadDeadline(time.Now().Add(d.timeout))
	n, err := d.conn.Read(p)
	if err != nil && d.err == nil {
		d.err = err
	}
	return n, err
}

func (d *deadlineConn) Write(p []byte) (int, error) {
	d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	n, err := d.conn.Write(p)
	if err != nil && d.err == nil {
		d.err = err
	}
	return n, err
}
