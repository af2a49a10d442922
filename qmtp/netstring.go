// Package qmtp implements the netstring protocols of qmail: the QMTP
// server (qmail-qmtpd), the QMQP server (qmail-qmqpd) and the QMQP client
// (qmail-qmqpc). Each server is a function over a connection and a
// configuration value, so tcpserver (fd 0 and 1) or a listener can drive it.
package qmtp

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxLength is the largest netstring length the servers accept. qmail's
// getlen gives up (exit 111) once the length passes 200000000 before its
// last digit, so lengths up to about 2 GB are what qmail handles; ours is
// the same bound, and bodies that long are streamed, never held.
const MaxLength = 2000000000

// ErrMalformed is the error of broken framing: a non-digit in a length, an
// empty length, a missing comma, a netstring running past its container.
// qmail's servers exit 100 on it.
var ErrMalformed = errors.New("malformed netstring")

// ErrTooLong is the error of a length beyond the reader's maximum; qmail's
// servers exit 111 on it ("resources").
var ErrTooLong = errors.New("netstring length too large")

// ByteReader is where netstrings are read from: a bufio.Reader, usually.
type ByteReader interface {
	io.Reader
	io.ByteReader
}

// ReadLength reads the decimal length of a netstring and its colon. Only
// digits are accepted (stock qmail does not check them), at least one,
// and the value may not exceed max. End of input is io.ErrUnexpectedEOF
// except before the first digit, where it is io.EOF (a clean end).
func ReadLength(r io.ByteReader, max uint64) (uint64, error) {
	var n uint64
	digits := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && digits > 0 {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if c == ':' {
			if digits == 0 {
				return 0, fmt.Errorf("%w: empty length", ErrMalformed)
			}
			return n, nil
		}
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: byte %q in length", ErrMalformed, c)
		}
		d := uint64(c - '0')
		if n > (max-d)/10 || d > max {
			return 0, fmt.Errorf("%w: more than %d", ErrTooLong, max)
		}
		n = n*10 + d
		digits++
	}
}

// ReadComma reads the comma that ends a netstring.
func ReadComma(r io.ByteReader) error {
	c, err := r.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	if c != ',' {
		return fmt.Errorf("%w: %q instead of comma", ErrMalformed, c)
	}
	return nil
}

// ReadNetstring reads one whole netstring of at most max bytes.
func ReadNetstring(r ByteReader, max int) ([]byte, error) {
	n, err := ReadLength(r, uint64(max))
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, unexpected(err)
	}
	if err := ReadComma(r); err != nil {
		return nil, err
	}
	return b, nil
}

// AppendNetstring appends the netstring encoding of s to b.
func AppendNetstring(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	b = append(b, s...)
	return append(b, ',')
}

// unexpected turns the end of input inside a netstring into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
