package admin

import (
	"bufio"
	"errors"
	"io"
	"log/syslog"
	"strconv"
	"strings"
	"time"
)

// SploggerFold is where splogger folds a line: syslog implementations
// truncate (or worse) longer messages. A line of n bytes is sent in
// pieces of at most SploggerFold-1 bytes.
const SploggerFold = 800

// SyslogFunc sends one message with a priority (LOG_INFO, LOG_WARNING or
// LOG_ALERT) to syslog.
type SyslogFunc func(priority syslog.Priority, msg string) error

// Splogger copies the lines of r to syslog as qmail's splogger does:
// each line is prefixed with a "seconds.microseconds " timestamp taken
// when its first piece is sent; lines starting with "alert:" or
// "warning:" get LOG_ALERT or LOG_WARNING, others LOG_INFO; bytes outside
// printable ASCII become '?'; blank lines are not logged; a line longer
// than SploggerFold-1 bytes is sent in pieces, the later ones marked by a
// '+' after the (same) timestamp instead of a space. Unlike qmail's, a
// last line without a newline is logged rather than lost. Memory is
// bounded by the fold size whatever the input.
func Splogger(r io.Reader, send SyslogFunc, now func() time.Time) error {
	in := bufio.NewReader(r)
	buf := make([]byte, 0, SploggerFold)
	cont := false
	var stamp string
	priority := syslog.LOG_INFO
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		var msg string
		if cont {
			msg = stamp + "+" + string(buf)
		} else {
			t := now()
			stamp = strconv.FormatInt(t.Unix(), 10) + "." + pad6(t.Nanosecond()/1000)
			priority = sploggerPriority(string(buf))
			msg = stamp + " " + string(buf)
			cont = true
		}
		buf = buf[:0]
		return send(priority, msg)
	}
	for {
		c, err := in.ReadByte()
		if err != nil {
			ferr := flush()
			if errors.Is(err, io.EOF) {
				return ferr
			}
			return err
		}
		if c == '\n' {
			if err := flush(); err != nil {
				return err
			}
			cont = false
			continue
		}
		if len(buf) == SploggerFold-1 {
			if err := flush(); err != nil {
				return err
			}
		}
		if c < 32 || c > 126 {
			c = '?'
		}
		buf = append(buf, c)
	}
}

func sploggerPriority(line string) syslog.Priority {
	switch {
	case strings.HasPrefix(line, "alert:"):
		return syslog.LOG_ALERT
	case strings.HasPrefix(line, "warning:"):
		return syslog.LOG_WARNING
	}
	return syslog.LOG_INFO
}

func pad6(n int) string {
	s := strconv.Itoa(n)
	return strings.Repeat("0", 6-len(s)) + s
}

// SploggerArgs parses splogger's arguments [tag [facility]]: the tag
// defaults to "splogger", the facility (a number, as syslog.h numbers
// them: 2 is mail) to mail. Like scan_ulong, a facility that does not
// start with digits reads as 0 (kern).
func SploggerArgs(args []string) (tag string, facility syslog.Priority) {
	tag, facility = "splogger", syslog.LOG_MAIL
	if len(args) > 0 {
		tag = args[0]
		if len(args) > 1 {
			n, _ := scanDigits(args[1])
			facility = syslog.Priority((n & 0x1f) << 3)
		}
	}
	return tag, facility
}

func scanDigits(s string) (int, bool) {
	n, i := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1<<20; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n, i > 0
}
