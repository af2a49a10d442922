// Package remote is qmail-remote: it delivers one message to one remote
// host over SMTP and reports the outcome to qmail-rspawn in qmail's
// report protocol (see docs/qmail-remote.md).
package remote

import (
	"bufio"
	"errors"
	"fmt"
)

const (
	// maxReplyText is how much of a reply qmail-remote keeps for the
	// report (qmail's HUGESMTPTEXT); the rest is read and dropped.
	maxReplyText = 5000
	// maxReplyBytes bounds a whole reply, continuation lines included: a
	// peer streaming an endless reply is treated as a dead connection
	// rather than keeping us busy forever.
	maxReplyBytes = 1 << 20
)

// errBadReply: the peer's reply does not start with three digits. qmail
// turned such bytes into a meaningless number; we call it a protocol
// failure, which reports as a dead connection (a deferral).
var errBadReply = errors.New("malformed SMTP reply")

// Reply is one SMTP reply as qmail-remote sees it.
type Reply struct {
	Code int
	// Text is the reply as received, every line with its code and a
	// final "\n", carriage returns removed, cut at maxReplyText bytes.
	Text []byte
	// Lines are the reply's lines without code, separator and line end
	// (for EHLO keywords), each cut at maxReplyText bytes.
	Lines []string
}

// readReply reads one possibly multi-line reply the way qmail's
// smtpcode() does: the code comes from the first line; a line whose
// fourth byte is '-' is followed by another line. Bytes outside the
// caps are consumed and dropped.
func readReply(r *bufio.Reader) (Reply, error) {
	var rep Reply
	total := 0
	first := true
	for {
		line, err := readReplyLine(r, &total)
		if err != nil {
			return rep, err
		}
		if first {
			if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) {
				return rep, fmt.Errorf("%w: %q", errBadReply, truncate(line, 40))
			}
			rep.Code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
			first = false
		}
		for _, c := range line {
			if c != '\r' && len(rep.Text) < maxReplyText {
				rep.Text = append(rep.Text, c)
			}
		}
		if len(rep.Text) < maxReplyText {
			rep.Text = append(rep.Text, '\n')
		}
		more := len(line) > 3 && line[3] == '-'
		rest := ""
		if len(line) > 4 {
			rest = string(trimCR(line[4:]))
		}
		if len(rep.Lines) < 1000 {
			rep.Lines = append(rep.Lines, rest)
		}
		if !more {
			return rep, nil
		}
	}
}

// readReplyLine returns one line without its "\n", at most maxReplyText
// bytes of it; the rest of a longer line is read and discarded.
func readReplyLine(r *bufio.Reader, total *int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		*total += len(chunk)
		if *total > maxReplyBytes {
			return nil, fmt.Errorf("SMTP reply longer than %d bytes", maxReplyBytes)
		}
		if room := maxReplyText - len(line); room > 0 {
			line = append(line, chunk[:min(room, len(chunk))]...)
		}
		switch {
		case err == nil:
			if n := len(line); n > 0 && line[n-1] == '\n' {
				line = line[:n-1]
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func trimCR(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
