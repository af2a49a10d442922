package remote

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		code  int
		text  string
		lines []string
		err   bool
	}{
		{"single", "250 ok\r\n", 250, "250 ok\n", []string{"ok"}, false},
		{"multi", "250-a.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n", 250, "250-a.example\n250-PIPELINING\n250 SIZE 10\n", []string{"a.example", "PIPELINING", "SIZE 10"}, false},
		{"bare LF", "550 no\n", 550, "550 no\n", []string{"no"}, false},
		{"CRs dropped", "451 a\rb\r\n", 451, "451 ab\n", []string{"a\rb"}, false},
		{"code only", "220\r\n", 220, "220\n", []string{""}, false},
		{"continuation code ignored", "250-x\r\n999 y\r\n", 250, "250-x\n999 y\n", []string{"x", "y"}, false},
		{"not digits", "hello\r\n", 0, "", nil, true},
		{"short", "25\r\n", 0, "", nil, true},
		{"eof mid reply", "250-x\r\n", 0, "", nil, true},
		{"eof", "", 0, "", nil, true},
		{"nul kept", "250 a\x00b\r\n", 250, "250 a\x00b\n", []string{"a\x00b"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := readReply(bufio.NewReader(strings.NewReader(tc.in)))
			if tc.err {
				if err == nil {
					t.Fatalf("want error, got %+v", rep)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Code != tc.code || string(rep.Text) != tc.text || strings.Join(rep.Lines, "|") != strings.Join(tc.lines, "|") {
				t.Fatalf("got %d %q %q, want %d %q %q", rep.Code, rep.Text, rep.Lines, tc.code, tc.text, tc.lines)
			}
		})
	}
}

func TestReadReplyCaps(t *testing.T) {
	long := "550 " + strings.Repeat("x", 20000) + "\r\n"
	rep, err := readReply(bufio.NewReaderSize(strings.NewReader(long+"250 next\r\n"), 16))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != 550 || len(rep.Text) != maxReplyText {
		t.Fatalf("code %d, text %d bytes", rep.Code, len(rep.Text))
	}
	// The rest of the long line was consumed: the next reply is intact.
	r := bufio.NewReaderSize(strings.NewReader(long+"250 next\r\n"), 16)
	if _, err = readReply(r); err != nil {
		t.Fatal(err)
	}
	next, err := readReply(r)
	if err != nil || next.Code != 250 || string(next.Text) != "250 next\n" {
		t.Fatalf("next reply %+v, %v", next, err)
	}
	endless := strings.Repeat("250-"+strings.Repeat("y", 1000)+"\r\n", 2000)
	if _, err := readReply(bufio.NewReader(strings.NewReader(endless))); err == nil {
		t.Fatal("endless reply accepted")
	}
}

func body(t *testing.T, in string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	err := writeBody(w, strings.NewReader(in))
	w.Flush()
	return out.String(), err
}

func TestWriteBody(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"empty", "", "", nil},
		{"lines", "a\nb\n", "a\r\nb\r\n", nil},
		{"dot stuffing", ".\n..x\n.\n", "..\r\n...x\r\n..\r\n", nil},
		{"crlf in queue", "a\r\nb\r\n", "a\r\nb\r\n", nil},
		{"bare CR is a line end", "a\rb\n", "a\r\nb\r\n", nil},
		{"smuggle LF dot LF", "x\n.\nMAIL FROM:<a@b>\n", "x\r\n..\r\nMAIL FROM:<a@b>\r\n", nil},
		{"smuggle CR dot CR", "x\r.\rMAIL FROM:<a@b>\r\n", "x\r\n..\r\nMAIL FROM:<a@b>\r\n", nil},
		{"smuggle CRLF dot CR", "x\r\n.\rDATA\n", "x\r\n..\r\nDATA\r\n", nil},
		{"CR CR LF", "a\r\r\n", "a\r\n\r\n", nil},
		{"8bit and NUL kept", "\xff\x00\n", "\xff\x00\r\n", nil},
		{"partial", "a\nb", "", errPartialLine},
		{"partial CR", "a\r", "", errPartialLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := body(t, tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				if strings.HasSuffix(got, ".\r\n") {
					t.Fatalf("final dot sent after %v: %q", err, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestWriteBodyReadError(t *testing.T) {
	w := bufio.NewWriter(io.Discard)
	var re *readError
	if err := writeBody(w, io.MultiReader(strings.NewReader("a\n"), failingReader{})); !errors.As(err, &re) {
		t.Fatalf("got %v, want readError", err)
	}
}

// checkWire asserts the SMTP data invariants: CR and LF only as CRLF,
// no line "." before the end, the end is "\r\n.\r\n" (or ".\r\n" alone).
func checkWire(t testing.TB, wire string) {
	t.Helper()
	for i := 0; i < len(wire); i++ {
		switch wire[i] {
		case '\r':
			if i+1 >= len(wire) || wire[i+1] != '\n' {
				t.Fatalf("bare CR at %d in %q", i, wire)
			}
		case '\n':
			if i == 0 || wire[i-1] != '\r' {
				t.Fatalf("bare LF at %d in %q", i, wire)
			}
		}
	}
	if !strings.HasSuffix(wire, ".\r\n") {
		t.Fatalf("no final dot: %q", wire)
	}
	lines := strings.Split(strings.TrimSuffix(wire, "\r\n"), "\r\n")
	for i, l := range lines[:len(lines)-1] {
		if l == "." {
			t.Fatalf("end of data at line %d of %q", i, wire)
		}
	}
}

// unstuff is what a receiver makes of the data: lines without CRLF and
// without the stuffed dot.
func unstuff(wire string) []string {
	lines := strings.Split(strings.TrimSuffix(wire, "\r\n"), "\r\n")
	lines = lines[:len(lines)-1]
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, ".")
	}
	return lines
}

// queueLines is the message as lines, any of LF, CRLF, CR ending one.
func queueLines(msg string) []string {
	msg = strings.ReplaceAll(msg, "\r\n", "\n")
	msg = strings.ReplaceAll(msg, "\r", "\n")
	lines := strings.Split(msg, "\n")
	return lines[:len(lines)-1]
}

func FuzzWriteBody(f *testing.F) {
	for _, s := range []string{"", "a\n", ".\n", "x\r.\r\n", "\n.\n", "\r\n.\r\n", "..\r\r\n", "a\rb", "\xff\x00.\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := body(t, string(msg))
		if len(msg) > 0 && msg[len(msg)-1] != '\n' {
			if !errors.Is(err, errPartialLine) {
				t.Fatalf("partial line not refused: %v", err)
			}
			if strings.HasSuffix(got, "\r\n.\r\n") || got == ".\r\n" {
				t.Fatalf("final dot sent for a partial message: %q", got)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got += ".\r\n" // the session's final dot
		checkWire(t, got)
		if a, b := unstuff(got), queueLines(string(msg)); strings.Join(a, "\n") != strings.Join(b, "\n") || len(a) != len(b) {
			t.Fatalf("message changed: %q -> %q", msg, got)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 b\r\n", "5", "abc\r\n", "250-\n\n\n", "220\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rep, err := readReply(bufio.NewReaderSize(bytes.NewReader(in), 16))
		if err != nil {
			return
		}
		if rep.Code < 0 || rep.Code > 999 {
			t.Fatalf("code %d", rep.Code)
		}
		if len(rep.Text) > maxReplyText || bytes.IndexByte(rep.Text, '\r') >= 0 {
			t.Fatalf("text %q", rep.Text)
		}
		if !bytes.HasPrefix(in, rep.Text[:3]) {
			t.Fatalf("code text %q not from input", rep.Text[:3])
		}
	})
}

func TestSMTPAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"#@[]", "#@[]"},
		{"joe@example.com", "joe@example.com"},
		{"a.b@x", "a.b@x"},
		{".a@x", "\".a\"@x"},
		{"a.@x", "\"a.\"@x"},
		{"a..b@x", "\"a..b\"@x"},
		{"@x", "\"\"@x"},
		{"a b@x", "\"a b\"@x"},
		{"a\"b\\c@x", "\"a\\\"b\\\\c\"@x"},
		{"a@b@x", "\"a@b\"@x"},
		{"\xe9@x", "\"\xe9\"@x"},
		{"noat", "noat"},
	}
	for _, tc := range tests {
		got, err := smtpAddress(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("smtpAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"a\r@x", "a@x\n", "a\nRCPT TO:<b>@x"} {
		if _, err := smtpAddress(bad); err == nil {
			t.Errorf("smtpAddress(%q) accepted", bad)
		}
	}
}

func TestXtext(t *testing.T) {
	if got := xtext("a=b+c d\xff"); got != "a+3Db+2Bc+3Fd+3F" {
		t.Fatalf("got %q", got)
	}
}

func TestRoutes(t *testing.T) {
	routes := newRouteTable([]string{
		"example.com:relay.example.net",
		".sub.example.com:[10.0.0.1]:2525",
		"Upper.Example:up.example:26|joe|se|cret",
		"v6.example:[2001:db8::1]:587",
		"nocolon",
		"dup.example:first",
		"dup.example:second",
		":catchall.example",
	})
	tests := []struct {
		host string
		want Route
	}{
		{"example.com", Route{Relay: "relay.example.net", Port: 25}},
		{"EXAMPLE.COM", Route{Relay: "relay.example.net", Port: 25}},
		{"a.sub.example.com", Route{Relay: "[10.0.0.1]", Port: 2525}},
		{"sub.example.com", Route{Relay: "catchall.example", Port: 25}},
		{"upper.example", Route{Relay: "up.example", Port: 26, User: "joe", Password: "se|cret"}},
		{"v6.example", Route{Relay: "[2001:db8::1]", Port: 587}},
		{"dup.example", Route{Relay: "second", Port: 25}},
		{"other.org", Route{Relay: "catchall.example", Port: 25}},
	}
	for _, tc := range tests {
		got, ok := chooseRoute(routeTable{}, routes, "s@x", tc.host)
		if !ok || got != tc.want {
			t.Errorf("%s: got %+v %v, want %+v", tc.host, got, ok, tc.want)
		}
	}
	if _, ok := chooseRoute(routeTable{}, newRouteTable([]string{"a.example:"}), "s@x", "a.example"); ok {
		t.Error("empty relay must mean MX")
	}
	senders := newRouteTable([]string{
		"boss@example.com:smarthost.example:587|boss|pw",
		"@example.com:|dom|pw2",
		".corp.example:corp.example|c|p",
	})
	stests := []struct {
		sender string
		want   Route
		ok     bool
	}{
		{"boss@example.com", Route{Relay: "smarthost.example", Port: 587, User: "boss", Password: "pw"}, true},
		{"other@example.com", Route{Port: 25, User: "dom", Password: "pw2"}, true},
		{"x@a.corp.example", Route{Relay: "corp.example", Port: 25, User: "c", Password: "p"}, true},
		{"x@elsewhere.example", Route{Port: 25}, false},
	}
	for _, tc := range stests {
		got, ok := chooseRoute(senders, routeTable{}, tc.sender, "dest.example")
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.sender, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMatchPartner(t *testing.T) {
	tests := []struct {
		cert, fqdn string
		want       bool
	}{
		{"mx.example.com", "MX.example.com", true},
		{"*.example.com", "mx.example.com", true},
		{"*.example.com", "a.mx.example.com", false},
		{"*.example.com", "example.com", false},
		{"other.example.com", "mx.example.com", false},
	}
	for _, tc := range tests {
		if got := matchPartner(tc.cert, tc.fqdn); got != tc.want {
			t.Errorf("matchPartner(%q, %q) = %v", tc.cert, tc.fqdn, got)
		}
	}
	for _, bad := range []string{"", "..", "../x", "a/b", ".hidden", "a b"} {
		if safeFileName(bad) {
			t.Errorf("safeFileName(%q)", bad)
		}
	}
}

func TestTCPTO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tcpto")
	if err := os.WriteFile(path, make([]byte, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	a := netip.MustParseAddr("192.0.2.7")
	tt := NewTCPTO(path, 0, clock)
	if tt.Skip(a) {
		t.Fatal("skipped before any timeout")
	}
	tt.Record(a, true)
	if tt.Skip(a) {
		t.Fatal("one timeout must not skip")
	}
	now = now.Add(60 * time.Second)
	tt.Record(a, true) // within 120 s: not counted
	if tt.Skip(a) {
		t.Fatal("second timeout within 120 s counted")
	}
	now = now.Add(61 * time.Second)
	tt.Record(a, true)
	if !tt.Skip(a) {
		t.Fatal("two timeouts must skip")
	}
	entries, err := ReadTCPTO(path, now.Add(10*time.Second))
	if err != nil || len(entries) != 1 || entries[0].Addr != a || entries[0].Count != 2 || entries[0].Ago != 10 {
		t.Fatalf("entries %+v, %v", entries, err)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Equal(raw[:5], []byte{192, 0, 2, 7, 2}) || len(raw) != 1024 {
		t.Fatalf("record bytes % x", raw[:16])
	}
	now = now.Add(60*64*time.Second + time.Second) // pid 0: 3840 s
	if tt.Skip(a) {
		t.Fatal("still skipped after the back-off")
	}
	tt.Record(a, false) // successful connect resets
	entries, _ = ReadTCPTO(path, now)
	if len(entries) != 0 {
		t.Fatalf("not reset: %+v", entries)
	}
	// IPv6 is never recorded.
	before, _ := os.ReadFile(path)
	tt.Record(netip.MustParseAddr("2001:db8::1"), true)
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("IPv6 address written to the IPv4 table")
	}
	// A full table replaces the oldest record.
	for i := 0; i < 64; i++ {
		now = now.Add(time.Second)
		tt.Record(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), true)
	}
	now = now.Add(time.Second)
	tt.Record(netip.MustParseAddr("10.0.1.1"), true)
	entries, _ = ReadTCPTO(path, now)
	found := map[netip.Addr]bool{}
	for _, e := range entries {
		found[e.Addr] = true
	}
	if len(entries) != 64 || !found[netip.MustParseAddr("10.0.1.1")] || found[netip.MustParseAddr("10.0.0.0")] {
		t.Fatalf("replacement wrong: %d entries", len(entries))
	}
	if err := ClearTCPTO(path); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); !bytes.Equal(raw, make([]byte, 1024)) {
		t.Fatal("not cleared")
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"relay.example", "relay:26", "[::1]:587|u|p", "|u|p", "[bad", "x:y:z", "a|b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		r := parseRoute(value)
		if r.Port < 0 {
			t.Fatalf("port %d", r.Port)
		}
		if len(r.Relay) > len(value) || strings.ContainsRune(r.Relay, '|') {
			t.Fatalf("relay %q from %q", r.Relay, value)
		}
		if r.User != "" && !strings.Contains(value, "|") {
			t.Fatalf("user %q from %q", r.User, value)
		}
	})
}

func FuzzSMTPAddress(f *testing.F) {
	for _, s := range []string{"", "#@[]", "a@b", "a b@c", "\"@x", ".a.@x", "a\r\n@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		got, err := smtpAddress(addr)
		if err != nil {
			if !strings.ContainsAny(addr, "\r\n") {
				t.Fatalf("refused %q: %v", addr, err)
			}
			return
		}
		if strings.ContainsAny(got, "\r\n") {
			t.Fatalf("line break in %q", got)
		}
		at := strings.LastIndexByte(addr, '@')
		if at >= 0 && !strings.HasSuffix(got, addr[at:]) {
			t.Fatalf("domain changed: %q -> %q", addr, got)
		}
		if at >= 0 && needsQuote(addr[:at]) {
			local := got[:len(got)-len(addr[at:])]
			if len(local) < 2 || local[0] != '"' || local[len(local)-1] != '"' {
				t.Fatalf("not quoted: %q", got)
			}
			// Unescape and compare.
			var un strings.Builder
			inner := local[1 : len(local)-1]
			for i := 0; i < len(inner); i++ {
				if inner[i] == '\\' && i+1 < len(inner) {
					i++
				} else if inner[i] == '"' || inner[i] == '\\' {
					t.Fatalf("unescaped %q in %q", inner[i], got)
				}
				un.WriteByte(inner[i])
			}
			if un.String() != addr[:at] {
				t.Fatalf("local part changed: %q -> %q", addr, got)
			}
		}
	})
}

// TestTCPTOHostileTable: records written by a clock that was ahead, or by
// anything else, and short files. tcpto.c computes now - when unsigned,
// so a timeout "in the future" is never recent: it must not keep the
// address from being tried until the clock catches up.
func TestTCPTOHostileTable(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	a := netip.MustParseAddr("192.0.2.7")
	record := func(count byte, when int64) []byte {
		rec := make([]byte, 16)
		copy(rec, []byte{192, 0, 2, 7, count})
		binary.LittleEndian.PutUint32(rec[8:], uint32(when))
		return rec
	}
	tests := []struct {
		name  string
		table []byte
		skip  bool
	}{
		{"recent", append(record(2, now.Unix()-10), make([]byte, 1008)...), true},
		{"future by a day", append(record(2, now.Unix()+86400), make([]byte, 1008)...), false},
		{"far future", append(record(10, 0xffffffff), make([]byte, 1008)...), false},
		{"short file", record(2, now.Unix()-10)[:15], false},
		{"one record and a half", append(record(2, now.Unix()-10), 1, 2, 3), true},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tcpto")
			if err := os.WriteFile(path, tc.table, 0o644); err != nil {
				t.Fatal(err)
			}
			tt := NewTCPTO(path, 0, clock)
			if got := tt.Skip(a); got != tc.skip {
				t.Fatalf("Skip = %v, want %v", got, tc.skip)
			}
			tt.Record(a, true)
			tt.Record(netip.MustParseAddr("198.51.100.1"), true)
			if raw, _ := os.ReadFile(path); len(raw) != len(tc.table) {
				t.Fatalf("table grew from %d to %d bytes", len(tc.table), len(raw))
			}
		})
	}
}

// TestHugeTimeouts: timeouts too large for time.Duration are
// practically infinite, never negative.
func TestHugeTimeouts(t *testing.T) {
	for _, value := range []string{"99999999999", "99999999999999999999999", "0", "1200"} {
		t.Run(value, func(t *testing.T) {
			home := t.TempDir()
			dir := filepath.Join(home, "control")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, text := range map[string]string{"me": "a.example\n", "timeoutremote": value + "\n", "timeoutconnect": value + "\n"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := readSettings(home)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.timeout < time.Second || cfg.connectTimeout < time.Second {
				t.Fatalf("timeouts %v, %v", cfg.timeout, cfg.connectTimeout)
			}
		})
	}
}
