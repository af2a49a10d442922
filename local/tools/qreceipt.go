package tools

import (
	"bufio"
	"errors"
	"strings"

	"github.com/goqmail/goqmail/local"
	"github.com/goqmail/goqmail/queue"
)

// maxHeaderField bounds one (unfolded) header field qreceipt keeps; the
// rest of a longer field is read and dropped.
const maxHeaderField = 64 << 10

// Qreceipt is qreceipt(1): when the message's
// Notice-Requested-Upon-Delivery-To field lists the address given,
// send a success notice to the envelope sender ($SENDER), unless the
// message is itself a bounce.
func Qreceipt(args []string, p IO) int {
	dieMsg := func(code int, msg string) int { return p.die(code, "qreceipt: ", msg) }
	if len(args) < 1 {
		return dieMsg(100, "usage: qreceipt deliveryaddress")
	}
	target := args[0]
	returnPath, ok := p.Getenv("SENDER")
	if !ok {
		return dieMsg(100, "usage: qreceipt deliveryaddress")
	}
	fields, err := ReadHeader(bufio.NewReader(p.Stdin), maxHeaderField)
	if err != nil {
		return dieMsg(111, "fatal: read error")
	}
	var messageID string
	receipt := false
	for _, f := range fields {
		switch HeaderName(f) {
		case "message-id":
			messageID = f
		case "notice-requested-upon-delivery-to":
			addrs, ok := ParseAddressList(f[strings.IndexByte(f, ':')+1:])
			if !ok {
				return dieMsg(100, "fatal: unable to parse this: "+f)
			}
			for _, a := range addrs {
				if a == target {
					receipt = true
				}
			}
		}
	}
	if !receipt || returnPath == "" || returnPath == "#@[]" {
		return 0
	}
	quoted := local.QuoteAddr(returnPath)
	var b strings.Builder
	b.WriteString("From: DELIVERY NOTICE SYSTEM <" + quoted + ">\n")
	b.WriteString("To: <" + quoted + ">\n")
	b.WriteString("Subject: success notice\n\n")
	b.WriteString("Hi! This is the qreceipt program. Your message was delivered to the\n")
	b.WriteString("following address: " + target + ". Thanks for asking.\n")
	if messageID != "" {
		b.WriteString("Your " + messageID)
	}
	qq, err := queue.Open(p.QmailHome)
	if err != nil {
		return dieMsg(111, "fatal: unable to fork")
	}
	qq.WriteString(b.String())
	if err := qq.Close("", []string{returnPath}); err != nil {
		var qerr *queue.Error
		if errors.As(err, &qerr) && qerr.Permanent {
			return dieMsg(100, "fatal: permanent qmail-queue error")
		}
		return dieMsg(111, "fatal: temporary qmail-queue error")
	}
	return 0
}

// ReadHeader reads a message header as qmail's headerbody does: fields
// with their continuation lines joined (newlines kept), up to the empty
// line or the first line that is not a header field. A leading mbox
// "From " line becomes "MBOX-Line: From ...". Each field keeps at most
// max bytes.
func ReadHeader(r *bufio.Reader, max int) ([]string, error) {
	var fields []string
	var cur strings.Builder
	have := false
	add := func(s string) {
		if room := max - cur.Len(); room > 0 {
			cur.WriteString(s[:min(room, len(s))])
		}
	}
	for {
		line, complete, err := local.ReadLineCapped(r, max)
		if err != nil {
			return nil, err
		}
		if line == "" && !complete {
			break
		}
		if !complete {
			line += "\n"
		}
		if have && (line[0] == ' ' || line[0] == '\t') {
			add(line)
			if !complete {
				break
			}
			continue
		}
		if have {
			fields = append(fields, cur.String())
			cur.Reset()
			have = false
		}
		if line == "\n" {
			break
		}
		switch {
		case strings.HasPrefix(line, "From "):
			add("MBOX-Line: " + line)
		case validField(line):
			add(line)
		default:
			return fields, nil
		}
		have = true
		if !complete {
			break
		}
	}
	if have {
		fields = append(fields, cur.String())
	}
	return fields, nil
}

// validField is hfield_valid: a name of printable non-space ASCII, then
// optional spaces or tabs, then ':'.
func validField(line string) bool {
	j := strings.IndexByte(line, ':')
	if j < 0 {
		return false
	}
	name := strings.TrimRight(line[:j], " \t")
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= 32 || name[i] >= 127 {
			return false
		}
	}
	return true
}

// HeaderName is a field's name, lowercased, when it is followed only by
// spaces or tabs before the colon; "" otherwise.
func HeaderName(field string) string {
	j := strings.IndexByte(field, ':')
	if j < 0 {
		return ""
	}
	name := strings.TrimRight(field[:j], " \t")
	if strings.ContainsAny(name, " \t") {
		return ""
	}
	return strings.ToLower(name)
}

// ParseAddressList extracts the addresses of an RFC 822 address list
// (mailboxes "addr", "phrase <addr>", "<@route:addr>" and groups
// "name: a, b;"), with comments removed and quoted strings unquoted. ok is
// false for text that does not parse (an unclosed quote, comment,
// bracket or angle bracket).
func ParseAddressList(s string) (addrs []string, ok bool) {
	toks, ok := tokenize822(s)
	if !ok {
		return nil, false
	}
	var cur []token822
	flush := func() {
		if a := addressOf(cur); a != "" {
			addrs = append(addrs, a)
		}
		cur = cur[:0]
	}
	for _, t := range toks {
		switch {
		case t.special && (t.text == "," || t.text == ";"):
			flush()
		case t.special && t.text == ":" && !inAngle(cur):
			cur = cur[:0] // a group name: what follows are its members
		default:
			cur = append(cur, t)
		}
	}
	flush()
	return addrs, true
}

type token822 struct {
	text    string
	special bool // one of ()<>@,;:\".[] outside quotes
	quoted  bool
}

func inAngle(toks []token822) bool {
	open := false
	for _, t := range toks {
		if t.special && t.text == "<" {
			open = true
		}
		if t.special && t.text == ">" {
			open = false
		}
	}
	return open
}

// addressOf is the address of one mailbox's tokens: what is inside the
// angle brackets (without a source route) when there are any, otherwise
// all of it.
func addressOf(toks []token822) string {
	start, end := 0, len(toks)
	for i, t := range toks {
		if t.special && t.text == "<" {
			start = i + 1
			end = len(toks)
			for j := i + 1; j < len(toks); j++ {
				if toks[j].special && toks[j].text == ">" {
					end = j
					break
				}
			}
			break
		}
	}
	toks = toks[start:end]
	// Drop a source route "@a,@b:" (commas were already taken as
	// separators, so only a leading "@host:" remains).
	for i, t := range toks {
		if t.special && t.text == ":" {
			toks = toks[i+1:]
			break
		}
	}
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
	}
	return b.String()
}

// tokenize822 splits header text into RFC 822 tokens, dropping comments
// and whitespace and unquoting quoted strings and domain literals' escapes.
func tokenize822(s string) ([]token822, bool) {
	var toks []token822
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			depth := 0
			for ; i < len(s); i++ {
				if s[i] == '\\' {
					i++
					continue
				}
				if s[i] == '(' {
					depth++
				}
				if s[i] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if i >= len(s) {
				return nil, false
			}
			i++
		case c == '"':
			var b strings.Builder
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false
			}
			i++
			toks = append(toks, token822{text: b.String(), quoted: true})
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, false
			}
			toks = append(toks, token822{text: s[i : i+j+1]})
			i += j + 1
		case strings.IndexByte("()<>@,;:\\.]", c) >= 0:
			toks = append(toks, token822{text: string(c), special: true})
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n()<>@,;:\\\".[]", s[j]) < 0 {
				j++
			}
			toks = append(toks, token822{text: s[i:j]})
			i = j
		}
	}
	for _, t := range toks {
		if t.special && (t.text == ">" || t.text == "<") {
			if !balancedAngles(toks) {
				return nil, false
			}
			break
		}
	}
	return toks, true
}

func balancedAngles(toks []token822) bool {
	depth := 0
	for _, t := range toks {
		if !t.special {
			continue
		}
		switch t.text {
		case "<":
			depth++
		case ">":
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}
