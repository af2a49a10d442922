package local

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
	"time"
)

// MboxLockWait is how long qmail-local waits for the lock on an mbox
// before deferring the delivery.
const MboxLockWait = 30 * time.Second

// MboxWriter writes one message body in mbox(5) form: a '>' is put in
// front of every line that starts with "From " after any number of '>',
// and Finish ends the message with a newline (when the last line lacks
// one) and an empty line. It works on a stream with bounded memory, so a
// line of any length is quoted correctly.
type MboxWriter struct {
	w         *bufio.Writer
	atStart   bool // at the beginning of a line, reading its '>' prefix
	gt        int  // '>' bytes seen at the start of the current line, held back
	matched   int  // bytes of "From " matched after them, held back
	lastNL    bool // the last body byte written was '\n'
	wroteBody bool
}

// NewMboxWriter writes the quoted body to w.
func NewMboxWriter(w *bufio.Writer) *MboxWriter {
	return &MboxWriter{w: w, atStart: true}
}

const fromWord = "From "

// Write quotes and writes body bytes. Errors are those of the
// underlying writer.
func (m *MboxWriter) Write(p []byte) (int, error) {
	n := len(p)
	if n > 0 {
		m.wroteBody = true
		m.lastNL = p[n-1] == '\n'
	}
	for len(p) > 0 {
		if !m.atStart {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				if _, err := m.w.Write(p); err != nil {
					return 0, err
				}
				return n, nil
			}
			if _, err := m.w.Write(p[:i+1]); err != nil {
				return 0, err
			}
			p = p[i+1:]
			m.atStart = true
			continue
		}
		c := p[0]
		switch {
		case m.matched == 0 && c == '>':
			m.gt++
			p = p[1:]
		case c == fromWord[m.matched]:
			m.matched++
			p = p[1:]
			if m.matched == len(fromWord) {
				m.w.WriteByte('>')
				m.flushPrefix()
				m.atStart = false
			}
		default:
			// Not a From line: release what was held back and
			// copy the rest of the line as it is.
			m.flushPrefix()
			m.atStart = false
		}
	}
	return n, m.werr()
}

// flushPrefix writes the held-back '>' run and partial "From ".
func (m *MboxWriter) flushPrefix() {
	for ; m.gt > 0; m.gt-- {
		m.w.WriteByte('>')
	}
	m.w.WriteString(fromWord[:m.matched])
	m.matched = 0
}

func (m *MboxWriter) werr() error {
	// bufio.Writer keeps its first error; an empty write reports it.
	_, err := m.w.Write(nil)
	return err
}

// Finish writes what was held back, the missing final newline if any,
// and the empty line that separates mbox messages, then flushes.
func (m *MboxWriter) Finish() error {
	m.flushPrefix()
	if m.wroteBody && !m.lastNL {
		m.w.WriteByte('\n')
	}
	m.w.WriteByte('\n')
	return m.w.Flush()
}

// lockFile takes an exclusive flock on f, waiting at most wait. locked
// is false when the system refuses locks (qmail then delivers without
// one); a lock still held by someone else after wait is a failure.
func lockFile(f *os.File, wait time.Duration) (locked bool, err error) {
	deadline := time.Now().Add(wait)
	pause := 5 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		}
		if !time.Now().Before(deadline) {
			return false, temp("File has been locked for 30 seconds straight. (#4.3.0)")
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(pause*2, 250*time.Millisecond)
	}
}

// AppendMbox appends the message read from msg to the mbox file fn:
// ufline, rpline and dtline, then the quoted body. On a write or read
// failure the file is truncated back to its original length (when we
// hold the lock), so the mbox is not left with half a message.
func AppendMbox(fn string, msg io.Reader, ufline, rpline, dtline string, lockWait time.Duration) error {
	f, err := os.OpenFile(fn, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return tempf("Unable to open %s: %s. (#4.2.1)", fn, ErrText(err))
	}
	defer f.Close()
	locked, err := lockFile(f, lockWait)
	if err != nil {
		return err
	}
	pos, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return tempf("Unable to write %s: %s. (#4.3.0)", fn, ErrText(err))
	}
	undo := func() {
		if locked {
			f.Truncate(pos)
		}
	}
	w := bufio.NewWriterSize(f, 64<<10)
	w.WriteString(ufline)
	w.WriteString(rpline)
	w.WriteString(dtline)
	mw := NewMboxWriter(w)
	if _, err := copyMessage(mw, msg); err != nil {
		undo()
		var rerr *readError
		if errors.As(err, &rerr) {
			return tempf("Unable to read message: %s. (#4.3.0)", ErrText(rerr.err))
		}
		return tempf("Unable to write %s: %s. (#4.3.0)", fn, ErrText(err))
	}
	if err := mw.Finish(); err != nil {
		undo()
		return tempf("Unable to write %s: %s. (#4.3.0)", fn, ErrText(err))
	}
	if err := f.Sync(); err != nil {
		undo()
		return tempf("Unable to write %s: %s. (#4.3.0)", fn, ErrText(err))
	}
	return nil
}

// readError marks a failure to read the message, as opposed to a failure
// to write where it goes: qmail reports the two differently.
type readError struct{ err error }

func (e *readError) Error() string { return "read: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// copyMessage copies msg to w, telling read errors (wrapped in
// *readError) from write errors. A w that reads by itself (a
// bufio.Writer) is handed the reader, so no copy buffer is made.
func copyMessage(w io.Writer, msg io.Reader) (int64, error) {
	return io.Copy(w, messageReader{msg})
}

// messageReader wraps the message's read errors in *readError.
type messageReader struct{ r io.Reader }

func (m messageReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}
