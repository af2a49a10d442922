package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MaxAddr is qmail's ADDR: an envelope address of MaxAddr bytes or more
// makes qmail-queue exit 11.
const MaxAddr = 1003

// Record is one NUL-terminated record of a queue file or of the envelope
// on qmail-queue's fd 1: a type byte ('u', 'p', 'F', 'T', 'D') and text.
type Record struct {
	Type byte
	Text string
}

// ErrRecordTooLong is returned by RecordReader.Next for a record whose
// text reaches the reader's limit.
var ErrRecordTooLong = errors.New("queue record too long")

// RecordReader reads records from a todo/intd file, an info, local or
// remote file, or qmail-queue's envelope, with a bound on each record.
type RecordReader struct {
	r   *bufio.Reader
	max int
}

// NewRecordReader reads records of at most max bytes of text each.
func NewRecordReader(r io.Reader, max int) *RecordReader {
	return &RecordReader{r: bufio.NewReader(r), max: max}
}

// Next returns the next record. At a clean end of input it returns io.EOF;
// input that ends inside a record gives io.ErrUnexpectedEOF. A lone NUL
// (the terminator of qmail-queue's envelope) is a record with Type 0.
func (rr *RecordReader) Next() (Record, error) {
	t, err := rr.r.ReadByte()
	if err != nil {
		return Record{}, err // io.EOF at a record boundary
	}
	if t == 0 {
		return Record{Type: 0}, nil
	}
	var text []byte
	for {
		chunk, err := rr.r.ReadSlice(0)
		if len(text)+len(chunk) > rr.max {
			return Record{}, fmt.Errorf("%w (type %q)", ErrRecordTooLong, t)
		}
		text = append(text, chunk...)
		switch {
		case err == nil:
			return Record{Type: t, Text: string(text[:len(text)-1])}, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return Record{}, io.ErrUnexpectedEOF
		default:
			return Record{}, err
		}
	}
}

// AppendRecord appends the encoding of one record: type, text, NUL.
func AppendRecord(b []byte, t byte, text string) []byte {
	b = append(b, t)
	b = append(b, text...)
	return append(b, 0)
}

// CopyEnvelope reads qmail-queue's envelope (its fd 1: "F" sender NUL,
// then "T" recipient NUL for each recipient, then one more NUL) from src
// and writes its records to dst as an intd/todo file holds them: the
// same bytes without the final NUL. Nothing after the final NUL is read
// on purpose. Failures are *EnqueueError with qmail-queue's codes:
// ExitRead when the input ends (or fails) before the final NUL,
// ExitEnvelope for a record of the wrong type, ExitAddrTooLong for an
// address of MaxAddr bytes or more. A failure writing dst is reported by
// dst's Flush. src must buffer at least MaxAddr+1 bytes.
func CopyEnvelope(dst *bufio.Writer, src *bufio.Reader) error {
	if src.Size() <= MaxAddr {
		return fail(ExitBug, "envelope reader buffer too small", nil)
	}
	t, err := src.ReadByte()
	if err != nil {
		return readFail(err)
	}
	if t != 'F' {
		return fail(ExitEnvelope, fmt.Sprintf("envelope starts with %q, not 'F'", t), nil)
	}
	for {
		dst.WriteByte(t)
		if err := copyAddress(dst, src); err != nil {
			return err
		}
		t, err = src.ReadByte()
		if err != nil {
			return readFail(err)
		}
		if t == 0 {
			return nil
		}
		if t != 'T' {
			return fail(ExitEnvelope, fmt.Sprintf("envelope record of type %q, not 'T'", t), nil)
		}
	}
}

// copyAddress copies one address and its terminating NUL. As in qmail,
// MaxAddr bytes without a NUL make the address too long even when the
// input ends right there.
func copyAddress(dst *bufio.Writer, src *bufio.Reader) error {
	addr, err := src.ReadSlice(0)
	if err == nil {
		addr = addr[:len(addr)-1]
	}
	if len(addr) >= MaxAddr {
		return fail(ExitAddrTooLong, fmt.Sprintf("envelope address of %d bytes or more", len(addr)), nil)
	}
	if err != nil {
		return readFail(err)
	}
	dst.Write(addr)
	dst.WriteByte(0)
	return nil
}

func readFail(err error) error {
	if err == io.EOF {
		return fail(ExitRead, "envelope ends before its final NUL", io.ErrUnexpectedEOF)
	}
	return fail(ExitRead, "read envelope", err)
}
