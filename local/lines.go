package local

import (
	"fmt"
	"strings"
	"time"
)

// DTLine is the Delivered-To line for local@host, with newlines in the
// address turned into '_' so the line stays one line.
func DTLine(local, host string) string {
	return "Delivered-To: " + strings.ReplaceAll(local+"@"+host, "\n", "_") + "\n"
}

// RPLine is the Return-Path line for sender: its local part quoted as
// RFC 822 needs (qmail's quote2), newlines turned into '_'.
func RPLine(sender string) string {
	return "Return-Path: <" + strings.ReplaceAll(QuoteAddr(sender), "\n", "_") + ">\n"
}

// UFLine is the mbox "From " line: the sender with spaces, tabs and
// newlines turned into '-' (MAILER-DAEMON for the empty sender), then the
// time in qmail's ctime-like format, in UTC.
func UFLine(sender string, t time.Time) string {
	s := "MAILER-DAEMON"
	if sender != "" {
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\n' {
				return '-'
			}
			return r
		}, sender)
	}
	return "From " + s + " " + CTime(t)
}

// CTime formats t as qmail's myctime does: "Wed Sep 05 04:46:54 1996\n"
// in UTC (the day of the month is zero-padded, unlike ctime(3)).
func CTime(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s %s %02d %02d:%02d:%02d %d\n",
		t.Weekday().String()[:3], t.Month().String()[:3], t.Day(),
		t.Hour(), t.Minute(), t.Second(), t.Year())
}

// quoteOK marks the bytes an RFC 821 local part may hold unquoted
// (quote.c's table).
var quoteOK = func() (ok [128]bool) {
	for c := '!'; c <= '~'; c++ {
		ok[c] = true
	}
	for _, c := range "\"(),:;<>@[\\]" {
		ok[c] = false
	}
	return ok
}()

// QuoteAddr quotes the local part of an address (the part before the
// last '@') when RFC 821/822 require it, as qmail's quote2: the local
// part is put in double quotes with '\r', '\n', '"' and '\\' escaped.
func QuoteAddr(addr string) string {
	if addr == "" {
		return ""
	}
	box, domain := addr, ""
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		box, domain = addr[:i], addr[i:]
	}
	if !needsQuote(box) {
		return addr
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(box); i++ {
		switch c := box[i]; c {
		case '\r', '\n', '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String() + domain
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 128 || !quoteOK[s[i]] {
			return true
		}
	}
	return s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..")
}

// SplitExt gives EXT2, EXT3 and EXT4: what follows the first, second and
// third '-' of ext ("" when there are not that many).
func SplitExt(ext string) (ext2, ext3, ext4 string) {
	next := func(s string) string {
		if i := strings.IndexByte(s, '-'); i >= 0 {
			return s[i+1:]
		}
		return ""
	}
	ext2 = next(ext)
	ext3 = next(ext2)
	ext4 = next(ext3)
	return
}

// SplitHost gives HOST2, HOST3 and HOST4: host without its last one, two
// and three dot-separated components (host itself while there is no dot
// left to remove).
func SplitHost(host string) (host2, host3, host4 string) {
	cut := func(s string) string {
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			return s[:i]
		}
		return s
	}
	host2 = cut(host)
	host3 = cut(host2)
	host4 = cut(host3)
	return
}

// IsFromLine reports whether an mbox body line needs a '>' in front of
// it: it starts with "From " after any number of '>' (gfrom.c).
func IsFromLine(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	return len(line)-i >= 5 && string(line[i:i+5]) == "From "
}
