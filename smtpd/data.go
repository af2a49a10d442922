package smtpd

import (
	"errors"
	"io"
)

// MaxHops is qmail's MAXHOPS: a message whose header carries this many
// Received or Delivered lines is looping.
const MaxHops = 100

// ErrStrayNewline is a bare LF (one not preceded by CR) in DATA. qmail-smtpd
// answers "451 See ..." and disconnects, which makes SMTP smuggling with
// <LF>.<LF> and its variants impossible.
var ErrStrayNewline = errors.New("bare LF in DATA")

// ByteReader is what the DATA reader consumes (a *bufio.Reader).
type ByteReader interface {
	ReadByte() (byte, error)
}

// ReadData runs qmail-smtpd's DATA transparency machine (blast) over r
// until the terminating CRLF.CRLF, storing the message in w: CRLF becomes
// LF, a leading '.' is removed, a CR not followed by LF is kept. It counts
// the hop lines of the header (lines starting, case-insensitively, with
// "received" or "delivered", until the first empty line) and returns the
// count. Any bare LF returns ErrStrayNewline; read errors are returned as
// they come. Nothing is buffered here: memory does not grow with input.
func ReadData(r ByteReader, w io.ByteWriter) (hops int, err error) {
	const (
		stMid     = iota // inside a line
		stLineDot        // at the start of a line (after CRLF)
		stDot            // after CRLF "."
		stDotCR          // after CRLF ".\r"
		stCR             // after a CR
	)
	var h hopCounter
	h.reset()
	state := stLineDot
	for {
		ch, err := r.ReadByte()
		if err != nil {
			return h.hops, err
		}
		h.feed(ch)
		switch state {
		case stMid:
			if ch == '\n' {
				return h.hops, ErrStrayNewline
			}
			if ch == '\r' {
				state = stCR
				continue
			}
		case stLineDot:
			if ch == '\n' {
				return h.hops, ErrStrayNewline
			}
			if ch == '.' {
				state = stDot
				continue
			}
			if ch == '\r' {
				state = stCR
				continue
			}
			state = stMid
		case stDot:
			if ch == '\n' {
				return h.hops, ErrStrayNewline
			}
			if ch == '\r' {
				state = stDotCR
				continue
			}
			state = stMid
		case stDotCR:
			if ch == '\n' {
				return h.hops, nil
			}
			// ".\r" then something else: the dot was not an end marker,
			// and it is kept (qmail puts it back with the CR).
			if err := putAll(w, '.', '\r'); err != nil {
				return h.hops, err
			}
			if ch == '\r' {
				state = stCR
				continue
			}
			state = stMid
		case stCR:
			if ch == '\n' {
				state = stLineDot
				break
			}
			if ch != '\r' {
				if err := w.WriteByte('\r'); err != nil {
					return h.hops, err
				}
				state = stMid
			}
			// A CR after a CR: one CR is stored (below) and the
			// other stays pending in stCR.
		}
		if err := w.WriteByte(ch); err != nil {
			return h.hops, err
		}
	}
}

func putAll(w io.ByteWriter, bs ...byte) error {
	for _, b := range bs {
		if err := w.WriteByte(b); err != nil {
			return err
		}
	}
	return nil
}

// hopCounter follows blast's header scan on the raw input bytes.
type hopCounter struct {
	inHeader                 bool
	pos                      int
	maybeRecv, maybeEnd, mDl bool
	hops                     int
}

func (h *hopCounter) reset() {
	h.inHeader = true
	h.pos = 0
	h.maybeRecv, h.maybeEnd, h.mDl = true, true, true
}

func (h *hopCounter) feed(ch byte) {
	if !h.inHeader {
		return
	}
	if h.pos < 9 {
		if ch != "delivered"[h.pos] && ch != "DELIVERED"[h.pos] {
			h.mDl = false
		}
		if h.mDl && h.pos == 8 {
			h.hops++
		}
		if h.pos < 8 {
			if ch != "received"[h.pos] && ch != "RECEIVED"[h.pos] {
				h.maybeRecv = false
			}
			if h.maybeRecv && h.pos == 7 {
				h.hops++
			}
		}
		if h.pos < 2 {
			if ch != "\r\n"[h.pos] {
				h.maybeEnd = false
			}
			if h.maybeEnd && h.pos == 1 {
				h.inHeader = false
			}
		}
		h.pos++
	}
	if ch == '\n' {
		h.pos = 0
		h.maybeRecv, h.maybeEnd, h.mDl = true, true, true
	}
}
