// Package token822 is qmail's RFC 822 header tokenizer (token822.c): it
// splits a header field into atoms, quoted strings, domain literals,
// comments and specials, walks an address list from right to left so each
// address can be rewritten, and turns tokens back into a folded field.
//
// The behaviour, including its quirks, is netqmail's: qmail-inject's
// output must match byte for byte. Addresses handed to a rewrite callback
// are in reverse token order (the rightmost token first), as in qmail.
package token822

import (
	"errors"
	"strings"
)

// Type is the kind of a token.
type Type uint8

// The token kinds, with qmail's numbering.
const (
	Atom    Type = iota + 1 // word of atom characters
	Quote                   // "quoted string", Text unescaped
	Literal                 // [domain literal], Text unescaped
	Comment                 // (comment), Text unescaped, nested parens dropped
	Left                    // <
	Right                   // >
	At                      // @
	Comma                   // ,
	Semi                    // ;
	Colon                   // :
	Dot                     // .
)

// Token is one lexical element. Text is set for Atom, Quote, Literal and
// Comment.
type Token struct {
	Type Type
	Text string
}

// ErrSyntax is returned for input qmail cannot tokenize (an unbalanced
// quote, comment or literal, a stray ')' or ']') or an address list it
// cannot parse.
var ErrSyntax = errors.New("RFC 822 syntax error")

// atomOK reports whether ch continues an atom.
func atomOK(ch byte) bool {
	switch ch {
	case ' ', '\t', '\r', '\n', '(', '[', '"', '<', '>', ';', ':', '@', ',', '.':
		return false
	}
	return true
}

var specials = [256]Type{'.': Dot, ',': Comma, '@': At, '<': Left, '>': Right, ':': Colon, ';': Semi}

// Parse tokenizes s as token822_parse does. Backslash escapes are honoured
// everywhere, even inside atoms; an atom that ends up holding a control
// character, a byte above 126, ')', ']' or '\' becomes a Quote so that it
// is written back quoted.
func Parse(s []byte) ([]Token, error) {
	var toks []Token
	var text []byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if t := specials[ch]; t != 0 {
			toks = append(toks, Token{Type: t})
			continue
		}
		switch ch {
		case ' ', '\t', '\r', '\n':
			continue
		case ')', ']':
			return nil, ErrSyntax
		case '(', '"', '[':
			typ, end := Comment, byte(')')
			if ch == '"' {
				typ, end = Quote, '"'
			} else if ch == '[' {
				typ, end = Literal, ']'
			}
			text = text[:0]
			level := 1
			for level > 0 {
				i++
				if i >= len(s) {
					return nil, ErrSyntax
				}
				c := s[i]
				switch {
				case typ == Comment && c == '(':
					level++ // nested parentheses are not kept
				case c == end:
					level--
				case c == '\\':
					i++
					if i >= len(s) {
						return nil, ErrSyntax
					}
					text = append(text, s[i])
				default:
					text = append(text, c)
				}
			}
			toks = append(toks, Token{Type: typ, Text: string(text)})
		default:
			text = text[:0]
			for {
				if s[i] == '\\' {
					i++
					if i >= len(s) {
						break
					}
				}
				text = append(text, s[i])
				i++
				if i >= len(s) || !atomOK(s[i]) {
					break
				}
			}
			i--
			toks = append(toks, atomOrQuote(string(text)))
		}
	}
	return toks, nil
}

// atomOrQuote is atomcheck: an atom with characters that cannot be
// written bare is kept as a quoted string.
func atomOrQuote(text string) Token {
	for i := 0; i < len(text); i++ {
		ch := text[i]
		if ch < 32 || ch > 126 || ch == ')' || ch == ']' || ch == '\\' {
			return Token{Type: Quote, Text: text}
		}
	}
	return Token{Type: Atom, Text: text}
}

func isWord(t Type) bool {
	return t == Atom || t == Literal || t == Quote || t == Comment
}

// needSpace says whether a space separates tokens of types prev and next.
func needSpace(prev, next Type) bool {
	switch {
	case prev == 0:
		return false
	case prev == Colon, prev == Comma, next == Left:
		return true
	}
	return isWord(prev) && isWord(next)
}

// Unparse writes tokens back as text, as token822_unparse does: a space
// where one is needed, specials inside words escaped, and a line break
// after each comma except where the line (counted as qmail counts it) still
// fits in lineLen bytes; lineLen 0 never breaks. The result ends in "\n".
func Unparse(toks []Token, lineLen int) []byte {
	buf := make([]byte, 0, 64)
	lineStart := 0 // where the current output line starts
	brk := -1      // the pending, removable "\n " after the last comma
	foldPoint := func() {
		s := len(buf)
		buf = append(buf, '\n', ' ')
		if brk >= 0 && (lineLen == 0 || s-lineStart <= lineLen) {
			// The line still fits: drop the previous break, keep this one pending.
			copy(buf[brk:], buf[brk+2:s+2])
			brk = s - 2
			buf = buf[:s]
			return
		}
		if brk >= 0 {
			lineStart = brk + 1
		}
		brk = s
	}
	var last Type
	for _, t := range toks {
		if needSpace(last, t.Type) {
			buf = append(buf, ' ')
		}
		last = t.Type
		switch t.Type {
		case Comma:
			buf = append(buf, ',')
			foldPoint()
		case At:
			buf = append(buf, '@')
		case Dot:
			buf = append(buf, '.')
		case Left:
			buf = append(buf, '<')
		case Right:
			buf = append(buf, '>')
		case Semi:
			buf = append(buf, ';')
		case Colon:
			buf = append(buf, ':')
		case Atom, Quote, Literal, Comment:
			open, closing := wordDelims(t.Type)
			if open != 0 {
				buf = append(buf, open)
			}
			for i := 0; i < len(t.Text); i++ {
				switch ch := t.Text[i]; ch {
				case '"', '[', ']', '(', ')', '\\', '\r', '\n':
					buf = append(buf, '\\', ch)
				default:
					buf = append(buf, ch)
				}
			}
			if closing != 0 {
				buf = append(buf, closing)
			}
		}
	}
	foldPoint()
	return buf[:len(buf)-1]
}

func wordDelims(t Type) (open, closing byte) {
	switch t {
	case Quote:
		return '"', '"'
	case Literal:
		return '[', ']'
	case Comment:
		return '(', ')'
	}
	return 0, 0
}

// Unquote is the plain text of tokens, as an envelope address: quoted
// strings lose their quotes, literals keep their brackets, comments
// disappear.
func Unquote(toks []Token) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.Type {
		case Comma:
			b.WriteByte(',')
		case At:
			b.WriteByte('@')
		case Dot:
			b.WriteByte('.')
		case Left:
			b.WriteByte('<')
		case Right:
			b.WriteByte('>')
		case Semi:
			b.WriteByte(';')
		case Colon:
			b.WriteByte(':')
		case Literal:
			b.WriteByte('[')
			b.WriteString(t.Text)
			b.WriteByte(']')
		case Atom, Quote:
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// Reverse reverses toks in place.
func Reverse(toks []Token) {
	for i, j := 0, len(toks)-1; i < j; i, j = i+1, j-1 {
		toks[i], toks[j] = toks[j], toks[i]
	}
}

// AddrList walks the address list of a header field (toks holds the whole
// field: name, colon, contents) from right to left as token822_addrlist
// does, hands every address to rewrite in reverse token order and returns
// the field with each address replaced by what rewrite returned. Words
// separated only by white space are taken as separate addresses and a
// comma is inserted between them.
func AddrList(toks []Token, rewrite func(addr []Token) []Token) ([]Token, error) {
	const first = 2 // toks[0:2] are the field name and its colon
	var out, addr []Token
	emit := func() {
		out = append(out, rewrite(addr)...)
		addr = addr[:0]
	}
	flush := func() {
		if len(addr) > 0 {
			emit()
		}
	}
	flushComma := func() {
		if len(addr) > 0 {
			emit()
			out = append(out, Token{Type: Comma})
		}
	}
	inGroup, wordOK := false, true
	t := len(toks) - 1
	for t >= first {
		switch toks[t].Type {
		case Semi:
			flushComma()
			if inGroup {
				return nil, ErrSyntax
			}
			inGroup, wordOK = true, true
		case Colon:
			flush()
			if !inGroup {
				return nil, ErrSyntax
			}
			inGroup = false
			for t >= first && toks[t].Type != Comma {
				out = append(out, toks[t])
				t--
			}
			if t >= first {
				out = append(out, toks[t])
				t--
			}
			wordOK = true
			continue
		case Right:
			flushComma()
			out = append(out, toks[t])
			t--
			for t >= first && toks[t].Type != Left {
				addr = append(addr, toks[t])
				t--
			}
			emit() // even when empty: <> is an address
			if t < first {
				return nil, ErrSyntax
			}
			out = append(out, toks[t])
			t--
			for t >= first {
				switch toks[t].Type {
				case Comment, Atom, Quote, At, Dot:
					out = append(out, toks[t])
					t--
					continue
				}
				break
			}
			wordOK = false
			continue
		case Atom, Quote, Literal:
			if !wordOK {
				flushComma()
			}
			wordOK = false
			addr = append(addr, toks[t])
			t--
			continue
		case Comment:
			// lexically white space: it does not change wordOK
		case Comma:
			flush()
			wordOK = true
		default:
			wordOK = true
			addr = append(addr, toks[t])
			t--
			continue
		}
		out = append(out, toks[t])
		t--
	}
	flush()
	for ; t >= 0; t-- {
		out = append(out, toks[t])
	}
	Reverse(out)
	return out, nil
}
