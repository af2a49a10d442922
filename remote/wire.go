package remote

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// errPartialLine: the message does not end with a line feed. Nothing
// more may be sent: without the final dot the peer discards the message.
var errPartialLine = errors.New("message ends with a partial line")

// readError wraps a failure to read the message from the queue, which
// qmail reports as "Unable to read message".
type readError struct{ err error }

func (e *readError) Error() string { return fmt.Sprintf("reading message: %v", e.err) }
func (e *readError) Unwrap() error { return e.err }

// writeBody copies the queued message src to the DATA stream dst. The
// terminating ".\r\n" is the caller's: the delivery becomes critical
// (a drop may duplicate) as soon as the dot is on its way.
//
// qmail-remote sent queue bytes nearly untouched: LF became CRLF, but a
// CR stayed wherever it was, so a queued "\r.\r" or "\r\n.\r\n" reached
// the wire with bare CRs that some peers take as line ends (SMTP
// smuggling). Here every line end in the queue, whatever its form (LF,
// CR LF, or a CR alone), becomes exactly one CRLF, so no CR or LF is
// ever sent except as part of a CRLF, and every line that starts with
// '.' is dot-stuffed. The peer therefore sees the one message whose
// lines are the queue's lines. A message whose last byte is not LF is
// refused, as qmail did, with errPartialLine, and the final dot is not
// sent. Reading src fails with *readError; write errors are returned
// as they are.
func writeBody(dst *bufio.Writer, src io.Reader) error {
	in := bufio.NewReaderSize(src, 16*1024)
	atLineStart := true
	var last byte = '\n'
	for {
		c, err := in.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &readError{err}
		}
		switch {
		case c == '\n':
			if last != '\r' { // CR LF was already written at the CR
				if _, err := dst.WriteString("\r\n"); err != nil {
					return err
				}
			}
			atLineStart = true
		case c == '\r':
			if _, err := dst.WriteString("\r\n"); err != nil {
				return err
			}
			atLineStart = true
		default:
			if atLineStart && c == '.' {
				if err := dst.WriteByte('.'); err != nil {
					return err
				}
			}
			if err := dst.WriteByte(c); err != nil {
				return err
			}
			atLineStart = false
			// The rest of the line that is already buffered, up to
			// the next CR or LF, goes in one write: byte by byte,
			// this loop was the largest part of a worker's CPU.
			held, _ := in.Peek(in.Buffered())
			n := bytes.IndexAny(held, "\r\n")
			if n < 0 {
				n = len(held)
			}
			if n > 0 {
				if _, err := dst.Write(held[:n]); err != nil {
					return err
				}
				c = held[n-1]
				in.Discard(n)
			}
		}
		last = c
	}
	if last != '\n' {
		return errPartialLine
	}
	return nil
}
