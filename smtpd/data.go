package smtpd

import (
	"bufio"
	"bytes"
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

// ReadData runs qmail-smtpd's DATA transparency machine (blast) over r
// until the terminating CRLF.CRLF, storing the message in w: CRLF becomes
// LF, a leading '.' is removed, a CR not followed by LF is kept. It counts
// the hop lines of the header (lines starting, case-insensitively, with
// "received" or "delivered", until the first empty line) and returns the
// count. Any bare LF returns ErrStrayNewline; read errors are returned as
// they come.
//
// Inside a line, the run of bytes up to the next CR or LF that r already
// holds is stored with one Write when w is also an io.Writer (and the hop
// scan sees only the part of it that can matter): such bytes leave the
// machine in its state, and taking them one by one was most of the DATA
// path's CPU. Nothing is buffered here beyond r's own buffer:
// memory does not grow with input.
func ReadData(r *bufio.Reader, w io.ByteWriter) (hops int, err error) {
	const (
		stMid     = iota // inside a line
		stLineDot        // at the start of a line (after CRLF)
		stDot            // after CRLF "."
		stDotCR          // after CRLF ".\r"
		stCR             // after a CR
	)
	runs, _ := w.(io.Writer)
	if runs == nil {
		runs = byteAtATime{w}
	}
	var h hopCounter
	h.reset()
	state := stLineDot
	for {
		if state == stMid {
			// Peek of what is buffered never reads, so the client is
			// read (and replies flushed) exactly when ReadByte would.
			held, _ := r.Peek(r.Buffered())
			n := bytes.IndexAny(held, "\r\n")
			if n < 0 {
				n = len(held)
			}
			if n > 0 {
				// run lives in r's buffer: it is stored and
				// scanned before anything reads again.
				run := held[:n]
				if stored, err := runs.Write(run); err != nil {
					// Byte by byte, the machine would have read
					// and scanned the byte it failed to store.
					n = min(stored+1, n)
					h.feedRun(run[:n])
					r.Discard(n)
					return h.hops, err
				}
				h.feedRun(run)
				r.Discard(n)
			}
		}
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

// byteAtATime lets a sink that only takes single bytes receive runs.
type byteAtATime struct{ w io.ByteWriter }

func (b byteAtATime) Write(p []byte) (int, error) {
	for i, c := range p {
		if err := b.w.WriteByte(c); err != nil {
			return i, err
		}
	}
	return len(p), nil
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

// feedRun feeds a run of bytes without CR or LF. Only the first 9 bytes
// of a header line can change the scan, and a run holds no line end, so
// the scan stops early instead of visiting every byte.
func (h *hopCounter) feedRun(run []byte) {
	for i := 0; i < len(run) && h.inHeader && h.pos < 9; i++ {
		h.feed(run[i])
	}
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
