package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseAddress(t *testing.T) {
	tests := []struct{ arg, want string }{
		{"FROM:<a@b.example>", "a@b.example"},
		{"FROM:<a@b.example> SIZE=10", "a@b.example"},
		{"FROM: <a@b.example>", "a@b.example"},
		{"FROM:a@b.example", "a@b.example"},
		{"FROM:   a@b.example junk", "a@b.example"},
		{"FROM:<>", ""},
		{"FROM:", ""},
		{"", ""},
		{"no colon", ""},
		{"TO:<@r1,@r2:u@d>", "u@d"},
		{"TO:<@r1>", ""},
		{`TO:<"a b"@d>`, "a b@d"},
		{`TO:<"a>b"@d>`, "a>b@d"},
		{`TO:<a\>b@d>`, "a>b@d"},
		{`TO:<a\\b@d>`, `a\b@d`},
		{`TO:<unterminated`, "unterminated"},
		{`TO:<"open quote>`, "open quote>"},
		{`TO:<a@d>>`, "a@d"},
		{`TO:x<a@d>`, "a@d"},
		{`TO:a<b@d`, "b@d"},
		{"TO:<a@[192.0.2.1]>", "a@[192.0.2.1]"},
	}
	for _, tt := range tests {
		if got := ParseAddress(tt.arg); got != tt.want {
			t.Errorf("ParseAddress(%q) = %q, want %q", tt.arg, got, tt.want)
		}
	}
}

func TestReplaceLocalIP(t *testing.T) {
	local := func(ip netip.Addr) bool { return ip == netip.MustParseAddr("10.0.0.1") }
	tests := []struct{ in, want string }{
		{"u@[10.0.0.1]", "u@me.example"},
		{"u@[266.0.0.1]", "u@me.example"}, // bytes wrap as in ip_scan
		{"u@[10.0.0.2]", "u@[10.0.0.2]"},
		{"u@[10.0.0.1]x", "u@[10.0.0.1]x"},
		{"u@[10.0.0]", "u@[10.0.0]"},
		{"u@[10..0.1]", "u@[10..0.1]"},
		{"[10.0.0.1]", "[10.0.0.1]"},
		{"a@b@[10.0.0.1]", "a@b@me.example"},
	}
	for _, tt := range tests {
		if got := ReplaceLocalIP(tt.in, "me.example", local); got != tt.want {
			t.Errorf("ReplaceLocalIP(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHasRelayCharacters(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"a@b", false}, {"", false}, {"postmaster", false},
		{"a%b@c", true}, {"a!b@c", true}, {"a@b@c", true},
		{"a!b", true}, {"a%b", true}, {"a@b%c", false}, {"a@b!c", false},
	}
	for _, tt := range tests {
		if got := HasRelayCharacters(tt.addr); got != tt.want {
			t.Errorf("HasRelayCharacters(%q) = %v", tt.addr, got)
		}
	}
}

func TestDecodeXtext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<>", "unknown"}, {"<>x", "unknown"}, {"a+3Db", "a=b"}, {"a+2bb", "a+b"},
		{"a+41b", "a41b"}, {"+", ""}, {"a+3", "a3"}, {"plain", "plain"},
	}
	for _, tt := range tests {
		if got := decodeXtext(tt.in); got != tt.want {
			t.Errorf("decodeXtext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDate822(t *testing.T) {
	got := Date822(time.Date(1995, 9, 26, 4, 46, 54, 0, time.FixedZone("x", 3600)))
	if got != "26 Sep 1995 03:46:54 -0000" {
		t.Errorf("Date822 = %q", got)
	}
}

// dataCase runs ReadData over input and reports what was stored.
func dataCase(input string) (stored string, hops int, err error) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	hops, err = ReadData(bufio.NewReader(strings.NewReader(input)), w)
	w.Flush()
	return out.String(), hops, err
}

func TestReadData(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"empty", ".\r\n", "", nil},
		{"simple", "a\r\nb\r\n.\r\n", "a\nb\n", nil},
		{"unstuff", "..a\r\n..\r\n.\r\n", ".a\n.\n", nil},
		{"dot-other", ".x\r\n.\r\n", "x\n", nil},
		{"bare-cr", "a\rb\r\n.\r\n", "a\rb\n", nil},
		{"cr-cr-lf", "a\r\r\n.\r\n", "a\r\n", nil},
		{"dot-cr-x", ".\rx\r\n.\r\n", ".\rx\n", nil},
		{"dot-cr-cr-lf", ".\r\r\n.\r\n", ".\r\n", nil},
		{"trailing", "a\r\n.\r\nNOOP\r\n", "a\n", nil},
		// The smuggling battery: none of these ends the message early;
		// each bare LF is refused.
		{"lf-dot-lf", "a\n.\n", "a", ErrStrayNewline},
		{"crlf-dot-lf", "a\r\n.\nMAIL FROM:<x>\r\n.\r\n", "a\n", ErrStrayNewline},
		{"lf-dot-crlf", "a\n.\r\n", "a", ErrStrayNewline},
		{"cr-dot-cr", "a\r.\rMAIL FROM:<x>\r\n.\r\n", "a\r.\rMAIL FROM:<x>\n", nil},
		{"cr-dot-crlf", "a\r.\r\nx\r\n.\r\n", "a\r.\nx\n", nil},
		{"crlf-dot-cr-lf-lf", "a\r\n.\r\n\n", "a\n", nil},
		{"lf-at-start", "\n.\r\n", "", ErrStrayNewline},
		{"crlf-dot-cr-cr", "a\r\n.\r\rb\r\n.\r\n", "a\n.\r\rb\n", nil},
		{"eof", "a\r\n", "a\n", io.EOF},
	}
	for _, tt := range tests {
		got, _, err := dataCase(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%s: ReadData(%q) = %q, %v; want %q, %v", tt.name, tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestReadDataHops(t *testing.T) {
	tests := []struct {
		in   string
		hops int
	}{
		{"Received: x\r\nDelivered-To: y\r\nreceivedx\r\nDELIVERED\r\n\r\nReceived: body\r\n.\r\n", 4},
		{"Receive: x\r\nDeliver: y\r\n.\r\n", 0},
		{" Received: folded\r\n.\r\n", 0},
		{"Subject: x\r\n\r\nReceived: x\r\n.\r\n", 0},
		{"\r\nReceived: x\r\n.\r\n", 0},
	}
	for _, tt := range tests {
		if _, hops, err := dataCase(tt.in); hops != tt.hops || err != nil {
			t.Errorf("hops(%q) = %d, %v; want %d", tt.in, hops, err, tt.hops)
		}
	}
}

// TestReadDataBounded sends a long line and a long header without ends:
// ReadData streams them, so a small writer sees them arrive.
func TestReadDataBounded(t *testing.T) {
	const n = 8 << 20
	r := io.MultiReader(strings.NewReader("X-Long: "), io.LimitReader(repeatReader('a'), n), strings.NewReader("\r\n.\r\n"))
	var count countWriter
	if _, err := ReadData(bufio.NewReaderSize(r, 4096), &count); err != nil {
		t.Fatal(err)
	}
	if int(count) != n+len("X-Long: \n") {
		t.Errorf("stored %d bytes, want %d", count, n+len("X-Long: \n"))
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

type countWriter int

func (c *countWriter) WriteByte(byte) error { *c++; return nil }

func TestReceived(t *testing.T) {
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	got := Received("SMTP", "mx.example", "192.0.2.1", "client.example", "", false, "", false, when)
	want := "Received: from client.example (192.0.2.1)\n  by mx.example with SMTP; 4 Mar 2026 05:06:07 -0000\n"
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
	got = Received("ESMTPA", "mx", "ip", "h", "u\x00v", true, "x\ny", true, when)
	want = "Received: from h (HELO x?y) (u@ip)\n  by mx with ESMTPA; 4 Mar 2026 05:06:07 -0000\n"
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestClean(t *testing.T) {
	if got := Clean("a\nb:c<d>e\x7f\xff f"); got != "a/b_c_d_e__ f" {
		t.Errorf("Clean = %q", got)
	}
	if got := Clean(strings.Repeat("x", 5000)); len(got) != maxLogged+3 {
		t.Errorf("Clean did not cut: %d", len(got))
	}
}

// TestCheckPasswordBytes checks the exact fd 3 layout: user NUL password
// NUL, and the challenge NUL only in the CRAM modes.
func TestCheckPasswordBytes(t *testing.T) {
	wd, _ := os.Getwd()
	prog := filepath.Join(wd, "testdata", "checkpassword.py")
	tests := []struct {
		smtpauth, input, want string
	}{
		{"", "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "alice\x00secret\x00"},
		{"+cram", "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "alice\x00secret\x00\x00"},
		{"!cram", "AUTH LOGIN YWxpY2U=\r\nc2VjcmV0\r\n", "alice\x00secret\x00\x00"},
		{"cram", "AUTH CRAM-MD5\r\nYWxpY2UgZWU0ZDk2YWRlMmNlNDFlZTk4NzExNDFmNmYyMTNlNTc=\r\n",
			"alice\x00ee4d96ade2ce41ee9871141f6f213e57\x00<999.1767323045@testhost.example>\x00"},
	}
	for _, tt := range tests {
		dump := filepath.Join(t.TempDir(), "fd3")
		t.Setenv("CHECKPW_DUMP", dump)
		d := &dialog{controls: map[string]string{}, env: map[string]string{"SMTPAUTH": tt.smtpauth, "TCPLOCALHOST": "testhost.example"},
			checkpw: []string{prog}, wantExit: 1}
		d.input.WriteString(tt.input)
		out, _, _, _ := runDialog(t, d)
		if !strings.HasSuffix(out, "235 ok, go ahead (#2.0.0)\r\n") {
			t.Errorf("SMTPAUTH=%q: replies %q", tt.smtpauth, out)
		}
		got, err := os.ReadFile(dump)
		if err != nil || string(got) != tt.want {
			t.Errorf("SMTPAUTH=%q: fd 3 got %q (%v), want %q", tt.smtpauth, got, err, tt.want)
		}
	}
}

func TestCramDigest(t *testing.T) {
	// RFC 2195's example.
	got := CramDigest("tanstaaftanstaaf", "<1896.697170952@postoffice.reston.mci.net>")
	if got != "b913a602c7eda7a495b4e6e7334d3890" {
		t.Errorf("CramDigest = %s", got)
	}
}
