package send

import (
	"fmt"
	"github.com/goqmail/goqmail/internal/ascii"
	"strings"
	"time"
)

// atomChar marks the bytes qmail's quote.c lets stand unquoted in a local
// part: printable ASCII other than space and ()<>@,;:\"[].
func atomChar(c byte) bool {
	if c <= ' ' || c >= 127 {
		return false
	}
	return !strings.ContainsRune("()<>@,;:\\\"[]", rune(c))
}

// quoteLocal quotes a local part when RFC 821 requires it (quote.c).
func quoteLocal(s string) string {
	need := s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..")
	for i := 0; i < len(s) && !need; i++ {
		need = !atomChar(s[i])
	}
	if !need {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', '\n', '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// quoteAddr quotes the local part of an address (quote2): the empty
// address stays empty.
func quoteAddr(addr string) string {
	if addr == "" {
		return ""
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return quoteLocal(addr)
	}
	return quoteLocal(addr[:at]) + addr[at:]
}

// stripVirtualPrepend undoes the virtualdomains prepend for the bounce
// paragraph: qmail-send strips everything up to the first '-' of an
// address whose domain is virtual (stripvdomprepend).
func (rw *Rewriter) stripVirtualPrepend(recip string) string {
	at := strings.LastIndexByte(recip, '@')
	if at < 0 {
		return recip
	}
	domain := recip[at+1:]
	lower := ascii.Lower(domain)
	for i := 0; i <= len(domain); i++ {
		if i != 0 && i != len(domain) && domain[i] != '.' {
			continue
		}
		prepend, ok := rw.VirtualDoms[lower[i:]]
		if !ok {
			continue
		}
		if prepend != "" && strings.HasPrefix(recip, prepend+"-") {
			return recip[len(prepend)+1:]
		}
		return recip
	}
	return recip
}

// BounceParagraph is what qmail-send appends to bounce/N for one failed
// recipient: "<recipient>:", the report with a final newline, empty lines
// inside it turned into "/", and a blank separator line.
func BounceParagraph(recip, report string) string {
	var b []byte
	b = append(b, '<')
	b = append(b, strings.ReplaceAll(recip, "\n", "_")...)
	b = append(b, ">:\n"...)
	b = append(b, report...)
	if report != "" && report[len(report)-1] != '\n' {
		b = append(b, '\n')
	}
	for pos := len(b) - 2; pos > 0; pos-- {
		if b[pos] == '\n' && b[pos-1] == '\n' {
			b[pos] = '/'
		}
	}
	b = append(b, '\n')
	return string(b)
}

// date822 formats a time as qmail's date822fmt does, always in UTC:
// "22 Nov 2026 05:50:00 -0000".
func date822(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d %s %d %02d:%02d:%02d -0000",
		t.Day(), t.Month().String()[:3], t.Year(), t.Hour(), t.Minute(), t.Second())
}

// BounceHeader is the head of a bounce message up to the bounce/N text:
// the header and the QSBMF introduction. sender is the original sender
// with a VERP "-@[]" already reduced; empty means a double bounce.
func BounceHeader(now time.Time, bounceFrom, bounceHost, sender, recip string) string {
	var b strings.Builder
	b.WriteString("Date: " + date822(now) + "\n")
	b.WriteString("From: " + quoteLocal(bounceFrom) + "@" + bounceHost + "\n")
	b.WriteString("To: " + quoteAddr(recip) + "\n")
	b.WriteString("Subject: failure notice\n\n")
	b.WriteString("Hi. This is the qmail-send program at " + bounceHost + ".\n")
	if sender != "" {
		b.WriteString("I'm afraid I wasn't able to deliver your message to the following addresses.\n" +
			"This is a permanent error; I've given up. Sorry it didn't work out.\n\n")
	} else {
		b.WriteString("I tried to deliver a bounce message to this address, but the bounce bounced!\n\n")
	}
	return b.String()
}

// BounceSeparator is the text between bounce/N and the original message.
func BounceSeparator(sender string) string {
	sep := "--- Below this line is the original bounce.\n\n"
	if sender != "" {
		sep = "--- Below this line is a copy of the message.\n\n"
	}
	return sep + "Return-Path: <" + quoteAddr(sender) + ">\n"
}

// verpSender is the envelope sender qmail-send gives one delivery: a
// sender "owner-@host-@[]" becomes "owner-rbox=rhost@host" for the
// recipient "rbox@rhost" (senderadd).
func verpSender(sender, recip string) string {
	if !strings.HasSuffix(sender, "-@[]") {
		return sender
	}
	base := sender[:len(sender)-4] // "owner-@host"
	at := strings.LastIndexByte(base, '@')
	if at < 0 {
		return sender
	}
	rat := strings.LastIndexByte(recip, '@')
	if rat < 0 {
		return sender
	}
	rbox, rhost := recip[:rat], recip[rat+1:]
	return base[:at] + rbox + "=" + rhost + base[at:]
}
