package send

import (
	"io"
	"strings"
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

// logger writes whole lines to qmail-send's fd 0, one write per line so
// that a line is never interleaved or half-buffered at a crash.
type logger struct {
	w io.Writer
}

func (l logger) line(parts ...string) {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	b = append(b, '\n')
	// A logger that went away must not stop deliveries: qmail ignores
	// log write errors too.
	l.w.Write(b)
}
