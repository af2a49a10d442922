package smtpd

import (
	"net/netip"
	"strings"
)

// MaxAddress is the longest envelope address qmail-smtpd accepts: a
// parsed address of more than MaxAddress bytes (counting qmail's
// terminating NUL, so MaxAddress-1 characters) answers 555.
const MaxAddress = 900

// ParseAddress extracts the envelope address from the argument of MAIL or
// RCPT exactly as qmail-smtpd's addrparse does: after '<' up to an
// unquoted '>', or, for clients that omit the brackets, after the first
// ':' (leading spaces skipped) up to an unquoted space. A leading source
// route ("@a,@b:") is dropped, '"' toggles quoting and is removed, '\'
// escapes the next byte. Nothing else is validated: qmail accepts an
// empty or odd address and lets qmail-send sort it out.
func ParseAddress(arg string) string {
	terminator := byte('>')
	if i := strings.IndexByte(arg, '<'); i >= 0 {
		arg = arg[i+1:]
	} else {
		terminator = ' '
		if i := strings.IndexByte(arg, ':'); i >= 0 {
			arg = arg[i+1:]
		} else {
			arg = ""
		}
		arg = strings.TrimLeft(arg, " ")
	}
	if strings.HasPrefix(arg, "@") {
		if i := strings.IndexByte(arg, ':'); i >= 0 {
			arg = arg[i+1:]
		} else {
			arg = ""
		}
	}
	var b strings.Builder
	escaped, quoted := false, false
	for i := 0; i < len(arg); i++ {
		c := arg[i]
		if escaped {
			b.WriteByte(c)
			escaped = false
			continue
		}
		if !quoted && c == terminator {
			break
		}
		switch c {
		case '\\':
			escaped = true
		case '"':
			quoted = !quoted
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// addressTooLong reports qmail's 555 condition: with its NUL, the address
// takes more than MaxAddress bytes.
func addressTooLong(addr string) bool { return len(addr)+1 > MaxAddress }

// ReplaceLocalIP implements control/localiphost: an address whose domain
// is the bracketed dotted quad "[d.d.d.d]" of one of this host's addresses
// (isLocal) gets localiphost as its domain instead.
func ReplaceLocalIP(addr, localIPHost string, isLocal func(netip.Addr) bool) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	ip, ok := scanBracketIPv4(addr[at+1:])
	if !ok || !isLocal(ip) {
		return addr
	}
	return addr[:at+1] + localIPHost
}

// scanBracketIPv4 parses the whole of s as "[d.d.d.d]" the way
// ip_scanbracket does: each part is a run of digits stored in a byte, so
// it wraps modulo 256.
func scanBracketIPv4(s string) (netip.Addr, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return netip.Addr{}, false
	}
	parts := strings.Split(s[1:len(s)-1], ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var q [4]byte
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		var v byte
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return netip.Addr{}, false
			}
			v = v*10 + (p[j] - '0')
		}
		q[i] = v
	}
	return netip.AddrFrom4(q), true
}

// HasRelayCharacters is patch 0007's test: the local part (everything
// before the last '@', or the whole address without '@') contains '@',
// '%' or '!', the characters of source-routed relaying.
func HasRelayCharacters(addr string) bool {
	local := addr
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		local = addr[:at]
	}
	return strings.ContainsAny(local, "@%!")
}

// BadMailFrom is control/badmailfrom: exact addresses and "@domain"
// entries, compared case-insensitively.
type BadMailFrom map[string]bool

// NewBadMailFrom builds the set from the control file's lines.
func NewBadMailFrom(lines []string) BadMailFrom {
	if lines == nil {
		return nil
	}
	m := make(BadMailFrom, len(lines))
	for _, l := range lines {
		m[strings.ToLower(l)] = true
	}
	return m
}

// Match reports whether addr is listed, as itself or by its "@domain".
func (b BadMailFrom) Match(addr string) bool {
	if b == nil {
		return false
	}
	a := strings.ToLower(addr)
	if b[a] {
		return true
	}
	if at := strings.LastIndexByte(a, '@'); at >= 0 {
		return b[a[at:]]
	}
	return false
}
