package inject

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxHeader bounds the header qmail-inject holds in memory: qmail keeps
// the whole header to rewrite it, and tokenizing a field costs tens of
// bytes per input byte. Real headers are a few KiB (Postfix cuts them at
// 100 KiB). The body is streamed and has no limit.
const MaxHeader = 256 << 10

// errHeaderTooLarge reports a header beyond MaxHeader.
var errHeaderTooLarge = fmt.Errorf("message header larger than %d bytes", MaxHeader)

// readError is a failure reading the message.
type readError struct{ err error }

func (e *readError) Error() string { return "read error: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// splitMessage reads a message as headerbody.c does and hands each header
// field (with its continuation lines and final "\n") to field. At the end
// of the header it calls done, which returns where the body goes, and then
// streams the body there. A line "From ..." in the header is kept as the
// field "MBOX-Line: From ...". The header ends at an empty line (which is
// part of the body), at end of input, or at the first line that is not a
// field; in that last case a blank line is inserted before it. A body
// whose last line lacks "\n" gets one.
func splitMessage(r io.Reader, field func([]byte) error, done func() (io.Writer, error)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var cur []byte // the field being gathered
	haveField := false
	total := 0
	var first []byte // the first body line, already read
	for {
		next, truncated, err := readLine(br, MaxHeader)
		if err != nil {
			return &readError{err}
		}
		if next == nil {
			if haveField {
				if err := field(cur); err != nil {
					return err
				}
			}
			_, err := done()
			return err
		}
		if truncated && headerBound(next, haveField) {
			return errHeaderTooLarge
		}
		if haveField && !truncated {
			if next[0] == ' ' || next[0] == '\t' {
				if total += len(next); total > MaxHeader {
					return errHeaderTooLarge
				}
				cur = append(cur, next...)
				continue
			}
		}
		if haveField {
			if err := field(cur); err != nil {
				return err
			}
			haveField = false
		}
		if len(next) == 1 && next[0] == '\n' {
			first = next
			break
		}
		switch {
		case truncated:
		case bytes.HasPrefix(next, []byte("From ")):
			cur = append(append(cur[:0], "MBOX-Line: "...), next...)
			haveField = true
		case validField(next):
			cur = append(cur[:0], next...)
			haveField = true
		}
		if !haveField {
			first = append([]byte{'\n'}, next...)
			break
		}
		if total += len(cur); total > MaxHeader {
			return errHeaderTooLarge
		}
	}
	w, err := done()
	if err != nil {
		return err
	}
	body := &lastByteWriter{w: w}
	if _, err := body.Write(first); err != nil {
		return err
	}
	if _, err := io.Copy(body, readerOnly{br}); err != nil {
		if body.werr != nil {
			return body.werr
		}
		return &readError{err}
	}
	if body.n > 0 && body.last != '\n' {
		if _, err := body.Write([]byte{'\n'}); err != nil {
			return err
		}
	}
	return nil
}

// headerBound decides, from the first bytes of a line too long to hold,
// whether the line belongs to the header (so the header is too large) or
// starts the body. A line with no colon yet whose prefix could still be a
// field name counts as header: it cannot be decided without holding it.
func headerBound(prefix []byte, continuing bool) bool {
	if continuing && (prefix[0] == ' ' || prefix[0] == '\t') {
		return true
	}
	if bytes.HasPrefix(prefix, []byte("From ")) {
		return true
	}
	if i := bytes.IndexByte(prefix, ':'); i >= 0 {
		return validName(prefix[:i])
	}
	return validName(prefix)
}

// readLine returns the next line with its "\n" (added when the input ends
// without one), or nil at end of input. A line longer than max is
// returned cut, with truncated set; its rest stays in r.
func readLine(r *bufio.Reader, max int) (line []byte, truncated bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line, false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line) >= max {
				return line, true, nil
			}
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return nil, false, nil
			}
			return append(line, '\n'), false, nil
		default:
			return nil, false, err
		}
	}
}

// lastByteWriter remembers how much was written and the last byte, and
// keeps write errors apart from read errors during a copy.
type lastByteWriter struct {
	w    io.Writer
	n    int64
	last byte
	werr error
}

func (l *lastByteWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.n += int64(n)
		l.last = p[n-1]
	}
	if err != nil {
		l.werr = err
	}
	return n, err
}

// readerOnly hides a reader's WriteTo so that io.Copy goes through
// lastByteWriter's Write.
type readerOnly struct{ io.Reader }
