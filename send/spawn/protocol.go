// Package spawn is the delivery side of qmail-send's spawner protocol
// (qmail-lspawn(8), qmail-rspawn(8), spawn.c): requests arrive on fd 0 as
// "slot messid NUL sender NUL recipient NUL", one child runs per
// delivery, and each finished delivery is answered on fd 1 with
// "slot letter text NUL".
package spawn

import (
	"bufio"
	"errors"
	"io"
)

// MaxSlots is qmail's conf-spawn: the spawner announces it at startup as
// one byte, and qmail-send never uses more slots than that.
const MaxSlots = 120

// maxField bounds one request field. qmail-send sends addresses of at
// most queue.MaxAddr bytes; anything longer is garbage and is answered,
// not buffered.
const maxField = 4096

// Request is one delivery asked for by qmail-send.
type Request struct {
	Slot      byte
	MessID    string // "split/inode", relative to queue/mess
	Sender    string
	Recipient string
	// TooLong is set when a field exceeded maxField; the request must be
	// answered with a temporary failure, as spawn.c does when it runs
	// out of memory.
	TooLong bool
}

// RequestReader parses the byte stream qmail-send writes to a spawner.
type RequestReader struct {
	r *bufio.Reader
}

// NewRequestReader reads requests from r.
func NewRequestReader(r io.Reader) *RequestReader {
	return &RequestReader{r: bufio.NewReader(r)}
}

// Next returns the next complete request, or io.EOF when qmail-send closed
// the pipe at a request boundary (a partial request at EOF is dropped, as
// spawn.c drops it).
func (rr *RequestReader) Next() (Request, error) {
	slot, err := rr.r.ReadByte()
	if err != nil {
		return Request{}, err
	}
	req := Request{Slot: slot}
	fields := [3]*string{&req.MessID, &req.Sender, &req.Recipient}
	for _, f := range fields {
		s, long, err := readField(rr.r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Request{}, io.EOF
			}
			return Request{}, err
		}
		*f = s
		req.TooLong = req.TooLong || long
	}
	return req, nil
}

// readField reads up to a NUL, keeping at most maxField bytes.
func readField(r *bufio.Reader) (string, bool, error) {
	var b []byte
	long := false
	for {
		chunk, err := r.ReadSlice(0)
		if !long {
			if len(b)+len(chunk) > maxField+1 {
				long = true
				b = nil
			} else {
				b = append(b, chunk...)
			}
		}
		switch {
		case err == nil:
			if long {
				return "", true, nil
			}
			return string(b[:len(b)-1]), false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", false, err
		}
	}
}

// AppendRequest encodes one request as qmail-send writes it.
func AppendRequest(b []byte, slot byte, messID, sender, recipient string) []byte {
	b = append(b, slot)
	b = append(b, messID...)
	b = append(b, 0)
	b = append(b, sender...)
	b = append(b, 0)
	b = append(b, recipient...)
	return append(b, 0)
}

// ValidMessID applies spawn.c's checks to a message id and returns the
// permanent-failure report for a bad one, or "" when it is acceptable:
// digits and '/', not starting with '/', fewer than 100 bytes (spawn.c
// counts the terminating NUL against its limit of 100), not empty.
func ValidMessID(id string) string {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (i == 0 || c != '/') && (c < '0' || c > '9') {
			return "DInternal error: messid has nonnumerics. (#5.3.5)\n"
		}
	}
	if len(id)+1 > 100 {
		return "DInternal error: messid too long. (#5.3.5)\n"
	}
	if id == "" {
		return "DInternal error: messid too short. (#5.3.5)\n"
	}
	return ""
}
