package send

import (
	"io"
	"strings"
	"sync"
)

// logSafe makes text fit on one log line the way qmail-send's logsafe
// does: newlines become '/', and control characters, spaces, bytes above
// '~' and '%' become '_'.
func logSafe(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n':
			c = '/'
		case c < 33 || c > 126 || c == '%':
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// logger writes whole lines to qmail-send's fd 0, never part of one, so
// that a line is not interleaved with another writer's or cut at a
// crash. While the main loop batches, lines collect in a buffer and go
// out in one write when the loop flushes: before it waits for events,
// before it sends a delivery request (a delivery that ran always has its
// "starting delivery" line, as in qmail), before it sleeps and when it
// ends. A logger (multilog, splogger) then wakes once per batch, not per
// line. It is safe for concurrent use.
type logger struct {
	w io.Writer

	mu       sync.Mutex
	batching bool
	buf      []byte
}

// logBatchMax is when a batch is written without waiting for a flush.
const logBatchMax = 16 << 10

func (l *logger) line(parts ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range parts {
		l.buf = append(l.buf, p...)
	}
	l.buf = append(l.buf, '\n')
	if !l.batching || len(l.buf) >= logBatchMax {
		l.writeLocked()
	}
}

// batch makes lines wait for flush, or (off) flushes and writes each
// line at once again.
func (l *logger) batch(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.batching = on
	if !on {
		l.writeLocked()
	}
}

// flush writes the lines collected so far.
func (l *logger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeLocked()
}

func (l *logger) writeLocked() {
	if len(l.buf) == 0 {
		return
	}
	// A logger that went away must not stop deliveries: qmail ignores
	// log write errors too.
	l.w.Write(l.buf)
	l.buf = l.buf[:0]
}
