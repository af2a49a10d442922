package smtpd

import (
	"fmt"
	"io"
	"strconv"
)

// Logger writes the one-line-per-event log of Debian's errmsg patch
// (0001): "qmail-smtpd: pid PID from IP: EVENT". Every line is written
// with a single Write so that lines of concurrent sessions sharing one
// stderr (the standalone listener) never interleave.
type Logger struct {
	w        io.Writer
	prefix   string
	remoteIP string
}

// NewLogger logs to w for the session of process (or session) id pid
// with the client address remoteIP. A nil w discards the log.
func NewLogger(w io.Writer, pid int, remoteIP string) *Logger {
	return &Logger{w: w, prefix: "qmail-smtpd: pid " + strconv.Itoa(pid) + " from ", remoteIP: remoteIP}
}

// Event logs one event; the text is ours and trusted.
func (l *Logger) Event(text string) {
	l.write(text)
}

// Eventf logs one event built from a format; arguments that came from
// the client must already be passed through Clean.
func (l *Logger) Eventf(format string, args ...any) {
	l.write(fmt.Sprintf(format, args...))
}

func (l *Logger) write(text string) {
	if l == nil || l.w == nil {
		return
	}
	// The remote IP comes from tcpserver or from the socket; it is still
	// filtered for control bytes so that a hostile environment cannot
	// forge log lines. Colons stay so that IPv6 addresses remain legible.
	line := l.prefix + cleanControl(l.remoteIP) + ": " + text + "\n"
	io.WriteString(l.w, line)
}

// maxLogged bounds how much of one client-supplied string reaches the log.
const maxLogged = 1024

// Clean makes a client-supplied string safe for the log as errbits.c's
// eoutclean does: newline becomes '/', and ':', '<', '>' and every byte
// outside printable ASCII become '_'. Strings longer than maxLogged are
// cut, with "..." appended.
func Clean(s string) string {
	cut := false
	if len(s) > maxLogged {
		s, cut = s[:maxLogged], true
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '\n':
			b[i] = '/'
		case c == ':' || c == '<' || c == '>' || c < 32 || c > 126:
			b[i] = '_'
		}
	}
	if cut {
		return string(b) + "..."
	}
	return string(b)
}

func cleanControl(s string) string {
	if len(s) > maxLogged {
		s = s[:maxLogged]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 32 || c > 126 {
			b[i] = '_'
		}
	}
	return string(b)
}
