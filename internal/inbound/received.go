package inbound

import (
	"fmt"
	"strings"
	"time"
)

// Received builds the header line qmail-smtpd writes above every message
// (received.c):
//
//	Received: from REMOTEHOST (HELO HELO) (INFO@REMOTEIP)
//	  by LOCAL with PROTOCOL; D Mon YYYY HH:MM:SS -0000
//
// The HELO part appears only when hasHelo (the HELO argument differed
// from the remote host name; it may be empty), "INFO@" only when hasInfo. Every value from the connection passes receivedSafe; the
// protocol is ours.
func Received(protocol, local, remoteIP, remoteHost, remoteInfo string, hasInfo bool, helo string, hasHelo bool, when time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(receivedSafe(remoteHost))
	if hasHelo {
		b.WriteString(" (HELO ")
		b.WriteString(receivedSafe(helo))
		b.WriteString(")")
	}
	b.WriteString(" (")
	if hasInfo {
		b.WriteString(receivedSafe(remoteInfo))
		b.WriteString("@")
	}
	b.WriteString(receivedSafe(remoteIP))
	b.WriteString(")\n  by ")
	b.WriteString(receivedSafe(local))
	b.WriteString(" with ")
	b.WriteString(protocol)
	b.WriteString("; ")
	b.WriteString(Date822(when))
	b.WriteString("\n")
	return b.String()
}

// receivedSafe keeps A-Z a-z 0-9 and ". @ % + / = : -" and turns every
// other byte into '?', as received.c's safeput does. A NUL ends the value
// (qmail's strings are C strings). Lengths are bounded by the command line
// limit.
func receivedSafe(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte(".@%+/=:-", c) >= 0:
		default:
			b[i] = '?'
		}
	}
	return string(b)
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// Date822 formats a time as qmail's date822fmt in UTC:
// "26 Sep 1995 04:46:54 -0000" (day without leading zero).
func Date822(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d %s %d %02d:%02d:%02d -0000", t.Day(), months[t.Month()-1], t.Year(), t.Hour(), t.Minute(), t.Second())
}
