package smtpd

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"FROM:<a@b>", "TO:<@r:u@d> X", `TO:<"a\>b"@d>`, "FROM: a@b c", "<", `\`, `"`, "@:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		addr := ParseAddress(arg)
		if len(addr) > len(arg) {
			t.Fatalf("address %q longer than argument %q", addr, arg)
		}
		HasRelayCharacters(addr)
		scanBracketIPv4(addr)
	})
}

func FuzzReadData(f *testing.F) {
	for _, s := range []string{".\r\n", "a\r\n.\r\n", "a\n.\n", "a\r.\r\n", "..\r\n.\r\n", "Received: x\r\n\r\n.\r\n", "\r\r\n.\r\r\n.\r\n"} {
		f.Add([]byte(s))
	}
	f.Add([]byte("a\r\n.\r\nb\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		stored, _, err := dataCase(string(in))
		if len(stored) > len(in) {
			t.Fatalf("stored more than read")
		}
		if err == nil {
			// Only CRLF.CRLF ends the data, and never after a bare LF.
			end := bytes.Index(append([]byte("\r\n"), in...), []byte("\r\n.\r\n"))
			if end < 0 {
				t.Fatalf("data ended without CRLF.CRLF in %q", in)
			}
			// end is the marker's offset in in, less the 2 prepended bytes.
			consumed := in[:end+3]
			if i := bytes.IndexByte(consumed, '\n'); i >= 0 && (i == 0 || consumed[i-1] != '\r') {
				t.Fatalf("bare LF accepted in %q", in)
			}
		}
		if errors.Is(err, ErrStrayNewline) && !bytes.Contains(in, []byte("\n")) {
			t.Fatalf("stray newline without LF")
		}
	})
}

// FuzzSession drives a whole session with arbitrary client bytes: it must
// end, every reply must be a CRLF-terminated line, and nothing may panic.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@testhost.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"AUTH LOGIN\r\nYWxpY2U=\r\n*\r\n",
		"MAIL FROM:<a@b> SIZE=1 AUTH=+2B\r\nRCPT TO:<a%b@c>\r\n",
		"DATA\r\n\n", "\x00\r\n", "STARTTLS x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := &dialog{controls: map[string]string{"rcpthosts": "testhost.example\n", "databytes": "100\n"},
			env: map[string]string{"SMTPAUTH": "-"}}
		d.input.Write(in)
		out, _, _, _ := runDialog(t, d)
		if !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("output does not end in CRLF: %q", out)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
			if len(line) < 4 || strings.ContainsAny(line, "\r\n") {
				t.Fatalf("bad reply line %q", line)
			}
		}
	})
}
