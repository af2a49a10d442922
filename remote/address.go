package remote

import (
	"errors"
	"strings"
)

// errLineBreakInAddress: qmail quoted CR and LF inside an address with a
// backslash and sent them raw, which would put a line break into an SMTP
// command. We refuse such an address instead.
var errLineBreakInAddress = errors.New("address contains CR or LF")

// atomChars are the local-part bytes qmail's quote.c sends unquoted.
const atomChars = "!#$%&'*+-/0123456789=?ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz{|}~."

// smtpAddress turns an envelope address into the text between "<" and
// ">" of MAIL FROM or RCPT TO, as qmail's addrmangle did (patch 0004: the
// domain is never rewritten): the local part (before the last '@') is
// quoted when it is not a plain dot-atom. An address without '@' (the
// empty sender, "#@[]" is fine) is sent unchanged.
func smtpAddress(addr string) (string, error) {
	if strings.ContainsAny(addr, "\r\n") {
		return "", errLineBreakInAddress
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, nil
	}
	return quoteLocal(addr[:at]) + addr[at:], nil
}

// quoteLocal is quote.c's quote(): the local part in double quotes, with
// '"' and '\' escaped, when it is empty, holds a byte outside the atom
// set, or has a leading, trailing or doubled dot.
func quoteLocal(box string) string {
	if !needsQuote(box) {
		return box
	}
	var b strings.Builder
	b.Grow(len(box) + 2)
	b.WriteByte('"')
	for i := 0; i < len(box); i++ {
		c := box[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

func needsQuote(box string) bool {
	if box == "" {
		return true
	}
	for i := 0; i < len(box); i++ {
		if strings.IndexByte(atomChars, box[i]) < 0 {
			return true
		}
	}
	return box[0] == '.' || box[len(box)-1] == '.' || strings.Contains(box, "..")
}

// xtext encodes the AUTH= parameter of MAIL FROM the way patch 0008 did:
// '=' and '+' hex-escaped, anything outside '!'..'~' replaced by "+3F".
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '=':
			b.WriteString("+3D")
		case c == '+':
			b.WriteString("+2B")
		case c < 33 || c > 126:
			b.WriteString("+3F")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// outsafe is qmail-remote's filter for names it echoes in reports: bytes
// outside '!'..'~' become '?'.
func outsafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '?'
		}
	}
	return string(b)
}
