// Package logbuf gathers the log lines of a standalone server's many
// sessions and writes them together.
//
// Under tcpserver every qmail-smtpd writes each of its lines to the
// logger's pipe at once: six writes, and six wake-ups of multilog, for a
// message. A listener serving hundreds of sessions in one process would
// do the same per line. Writer instead collects the lines and writes
// them at most Delay after the first of them, in one write: multilog's
// timestamps are at most that late, and a line is never cut or mixed
// with another, as each Write appends whole.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// Delay is how long a line may wait for others.
const Delay = 10 * time.Millisecond

// maxPending bounds the memory held: past it the lines are written at
// once (a pipe to the logger takes 64 KiB without blocking).
const maxPending = 32 << 10

// Writer is an io.Writer that delays and merges writes to w. It is safe
// for concurrent use. Flush must be called before the program ends.
type Writer struct {
	w     io.Writer
	delay time.Duration

	mu      sync.Mutex
	pending []byte
	timer   *time.Timer
	armed   bool
}

// New delays the writes to w by up to delay.
func New(w io.Writer, delay time.Duration) *Writer {
	return &Writer{w: w, delay: delay}
}

// Write appends p, which should be whole lines, to what is to be
// written. It never fails: as qmail's programs, a server goes on when
// its log cannot be written.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = append(b.pending, p...)
	switch {
	case len(b.pending) >= maxPending:
		b.writeLocked()
	case !b.armed:
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(b.delay, b.Flush)
		} else {
			b.timer.Reset(b.delay)
		}
	}
	return len(p), nil
}

// Flush writes what is pending now.
func (b *Writer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writeLocked()
}

func (b *Writer) writeLocked() {
	if b.armed {
		b.timer.Stop()
		b.armed = false
	}
	if len(b.pending) == 0 {
		return
	}
	b.w.Write(b.pending)
	if cap(b.pending) > maxPending {
		b.pending = nil // a burst's buffer is not kept
	} else {
		b.pending = b.pending[:0]
	}
}
