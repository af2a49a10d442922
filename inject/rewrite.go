package inject

import "github.com/goqmail/goqmail/inject/token822"

// rewriter completes addresses as qmail-header(5) describes, with the
// default host, default domain and plus domain as tokens in reading order
// ("@host", ".domain", ".plusdomain").
type rewriter struct {
	defaultHost   []token822.Token
	defaultDomain []token822.Token
	plusDomain    []token822.Token
}

// prepend puts the tokens of suffix, which are in reading order, in front
// of a reversed address: they end up at its right-hand end.
func prepend(addr, suffix []token822.Token) []token822.Token {
	out := make([]token822.Token, 0, len(addr)+len(suffix))
	for i := len(suffix) - 1; i >= 0; i-- {
		out = append(out, suffix[i])
	}
	return append(out, addr...)
}

// generic rewrites one address given in reverse token order (rwgeneric):
// source routes are dropped, a trailing "." or "@" removed, the default
// host added where there is no "@", a host ending in "+" completed with
// the plus domain and a dotless host with the default domain. <> and
// <foo@[]> (a VERP sender) are left alone.
func (rw *rewriter) generic(addr []token822.Token) []token822.Token {
	if len(addr) == 0 {
		return addr
	}
	if len(addr) >= 2 && addr[1].Type == token822.At && addr[0].Type == token822.Literal && addr[0].Text == "" {
		return addr
	}
	// A source route: "@a,@b:" in front of the mailbox.
	if addr[len(addr)-1].Type == token822.At {
		for len(addr) > 0 {
			last := addr[len(addr)-1]
			addr = addr[:len(addr)-1]
			if last.Type == token822.Colon {
				break
			}
		}
	}
	if len(addr) == 0 {
		return addr
	}
	if addr[0].Type == token822.Dot {
		addr = addr[1:]
	}
	if len(addr) == 0 {
		return addr
	}
	if addr[0].Type == token822.At {
		addr = addr[1:]
	}
	if len(addr) == 0 {
		return addr
	}
	if !hasAt(addr) {
		addr = prepend(addr, rw.defaultHost)
	}
	if t := addr[0]; t.Type == token822.Atom && t.Text != "" && t.Text[len(t.Text)-1] == '+' {
		trimmed := append([]token822.Token{{Type: token822.Atom, Text: t.Text[:len(t.Text)-1]}}, addr[1:]...)
		addr = prepend(trimmed, rw.plusDomain)
	}
	if !hostHasDotOrLiteral(addr) {
		addr = prepend(addr, rw.defaultDomain)
	}
	return addr
}

func hasAt(addr []token822.Token) bool {
	for _, t := range addr {
		if t.Type == token822.At {
			return true
		}
	}
	return false
}

// hostHasDotOrLiteral looks at the host part (the tokens before the first
// "@" of the reversed address) for a dot or a domain literal.
func hostHasDotOrLiteral(addr []token822.Token) bool {
	for _, t := range addr {
		switch t.Type {
		case token822.Dot, token822.Literal:
			return true
		case token822.At:
			return false
		}
	}
	return false
}

// reversedCopy returns toks in reverse order without touching toks.
func reversedCopy(toks []token822.Token) []token822.Token {
	out := make([]token822.Token, len(toks))
	for i, t := range toks {
		out[len(toks)-1-i] = t
	}
	return out
}

// envelopeAddr is the envelope form of a reversed address (rwappend).
func envelopeAddr(addr []token822.Token) string {
	return token822.Unquote(reversedCopy(addr))
}
