// Package pop3 is qmail's POP3 service: qmail-popup (the authorization
// state: greeting, USER/PASS/APOP, the checkpassword chain, and the STLS
// and POP3S additions) and qmail-pop3d (the transaction state over a
// maildir). Both are functions over a connection, with the process
// wiring in cmd/qmail-popup and cmd/qmail-pop3d.
package pop3

import (
	"bufio"
	"errors"
	"strings"
)

// MaxCommandLine bounds a command line, CRLF included. qmail reads lines
// of any length; RFC 1939 allows 255 bytes of arguments, and no client
// needs more than this.
const MaxCommandLine = 2048

// ErrLineTooLong is returned by ReadCommand for a line over
// MaxCommandLine; the session then ends.
var ErrLineTooLong = errors.New("command line too long")

// DefaultTimeout is qmail's idle timeout for every read and write.
const DefaultTimeout = 1200 // seconds

// Command is one parsed command line.
type Command struct {
	Verb string // as sent; compare with strings.EqualFold
	Arg  string // the rest of the line after the spaces following the verb
}

// ParseCommand splits a line (without its LF) as qmail's commands() does:
// one trailing CR is removed, the verb ends at the first space, and the
// argument is what follows after skipping spaces. A NUL ends the line, as
// it ends a C string.
func ParseCommand(line string) Command {
	line = strings.TrimSuffix(line, "\r")
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	verb, arg, _ := strings.Cut(line, " ")
	return Command{Verb: verb, Arg: strings.TrimLeft(arg, " ")}
}

// ReadCommand reads one command line up to LF. The end of input before a
// complete line is the end of the session (qmail ignores a partial last
// line).
func ReadCommand(r *bufio.Reader) (Command, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxCommandLine {
			return Command{}, ErrLineTooLong
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return ParseCommand(string(line[:len(line)-1])), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return Command{}, err
		}
	}
}

// is reports whether the command's verb is name, case-insensitively.
func (c Command) is(name string) bool { return strings.EqualFold(c.Verb, name) }

// scanUlong is qmail's scan_ulong: the value of the leading digits of s
// (saturating instead of wrapping) and how many digits there were.
func scanUlong(s string) (uint64, int) {
	var n uint64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if n > (^uint64(0)-d)/10 {
			n = ^uint64(0)
		} else {
			n = n*10 + d
		}
	}
	return n, i
}
