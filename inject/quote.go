package inject

import "strings"

// boxOK marks the bytes that may appear unquoted in the local part of an
// address (quote.c's table): printable ASCII except specials and space.
var boxOK = func() (ok [128]bool) {
	for c := 33; c < 127; c++ {
		ok[c] = true
	}
	for _, c := range `"(),:;<>@[\]` {
		ok[c] = false
	}
	return ok
}()

// quoteNeeded reports whether a local part must be quoted (quote_need):
// it is empty, has a byte outside boxOK, or has a leading, trailing or
// doubled dot.
func quoteNeeded(box string) bool {
	if box == "" {
		return true
	}
	for i := 0; i < len(box); i++ {
		if box[i] >= 128 || !boxOK[box[i]] {
			return true
		}
	}
	return box[0] == '.' || box[len(box)-1] == '.' || strings.Contains(box, "..")
}

// quoteBox returns box quoted if it needs to be (quote).
func quoteBox(box string) string {
	if !quoteNeeded(box) {
		return box
	}
	var b strings.Builder
	b.Grow(len(box) + 2)
	b.WriteByte('"')
	for i := 0; i < len(box); i++ {
		switch ch := box[i]; ch {
		case '\r', '\n', '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(ch)
		default:
			b.WriteByte(ch)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// quoteAddr quotes the part of addr before its last '@' where needed
// (quote2); "" stays "". The address is first cut at a NUL, as qmail
// handles it as a C string.
func quoteAddr(addr string) string {
	addr = cString(addr)
	if addr == "" {
		return ""
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return quoteBox(addr)
	}
	return quoteBox(addr[:at]) + addr[at:]
}

// cString cuts s at its first NUL: where qmail's C strings end.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}
