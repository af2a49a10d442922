package local

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseDotQmail(t *testing.T) {
	tests := []struct {
		in   string
		want []Line
	}{
		{"", []Line{{Kind: Blank}}},
		{"./Maildir/", []Line{{Maildir, "./Maildir/"}}},
		{"./Mailbox\n", []Line{{Mbox, "./Mailbox"}}},
		{"/var/mail/bob \t\n", []Line{{Mbox, "/var/mail/bob"}}},
		{"/home/bob/Maildir/  \n", []Line{{Maildir, "/home/bob/Maildir/"}}},
		{"|preline cat  \n", []Line{{Program, "preline cat"}}},
		{"| exit 0\n", []Line{{Program, " exit 0"}}},
		{"&me@new.job.com\n", []Line{{Forward, "me@new.job.com"}}},
		{"me@new.job.com\n", []Line{{Forward, "me@new.job.com"}}},
		{"&\n", []Line{{Forward, ""}}},
		{"# a comment\n", []Line{{Comment, "# a comment"}}},
		{"+list\n", []Line{{ListOnly, "+list"}}},
		{"+list \n", []Line{{ListOnly, "+list"}}},
		{"+other\n", []Line{{Ignored, "+other"}}},
		{"\n./Mailbox\n", []Line{{Kind: Blank}, {Mbox, "./Mailbox"}}},
		{"a@b\n\n \t\n&c@d", []Line{{Forward, "a@b"}, {Kind: Blank}, {Kind: Blank}, {Forward, "c@d"}}},
		// A NUL cuts the text but the last byte still decides the type.
		{"/x/\x00y\n", []Line{{Mbox, "/x/"}}},
		{"\x00abc\n", []Line{{Kind: Blank}}},
		{"|a\x00b\n", []Line{{Program, "a"}}},
		{"./a\r\n", []Line{{Mbox, "./a\r"}}},
	}
	for _, tt := range tests {
		got := ParseDotQmail(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseDotQmail(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseDotQmail(f *testing.F) {
	for _, s := range []string{"", "\n", "./Maildir/\n|prog\n&a@b\nc@d\n#x\n+list\n", "/x/\x00y", " \t\n\n", "&", "|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := ParseDotQmail(s)
		want := strings.Count(s, "\n")
		if s == "" || s[len(s)-1] != '\n' {
			want++
		}
		if len(lines) != want {
			t.Fatalf("%d lines for %q, want %d", len(lines), s, want)
		}
		for _, l := range lines {
			if strings.ContainsAny(l.Arg, "\n\x00") {
				t.Fatalf("argument %q holds a newline or NUL", l.Arg)
			}
			switch l.Kind {
			case Maildir, Mbox:
				if l.Arg == "" || (l.Arg[0] != '.' && l.Arg[0] != '/') {
					t.Fatalf("file line %q", l.Arg)
				}
			case Blank:
				if l.Arg != "" {
					t.Fatalf("blank line with text %q", l.Arg)
				}
			}
			if l.Kind != Blank && strings.TrimRight(l.Arg, " \t") != l.Arg && !strings.Contains(s, "\x00") {
				t.Fatalf("trailing space kept in %q", l.Arg)
			}
		}
	})
}

func TestSearchOrder(t *testing.T) {
	names := func(cs []Candidate) (n []string, at []int) {
		for _, c := range cs {
			n = append(n, c.Name)
			at = append(at, c.DefaultAt)
		}
		return
	}
	tests := []struct {
		dash, ext string
		want      []string
		at        []int
	}{
		{"", "", []string{".qmail", ".qmaildefault"}, []int{-1, 0}},
		{"-", "", []string{".qmail-", ".qmail-default"}, []int{-1, 0}},
		{"-", "a", []string{".qmail-a", ".qmail-default"}, []int{-1, 0}},
		{"-", "a-", []string{".qmail-a-", ".qmail-a-default", ".qmail-default"}, []int{-1, 2, 0}},
		{"-", "a-b-c", []string{".qmail-a-b-c", ".qmail-a-b-default", ".qmail-a-default", ".qmail-default"}, []int{-1, 4, 2, 0}},
		{"-", "Foo.Bar-x", []string{".qmail-foo:bar-x", ".qmail-foo:bar-default", ".qmail-default"}, []int{-1, 8, 0}},
		{"-", "x-default", []string{".qmail-x-default", ".qmail-x-default", ".qmail-default"}, []int{2, 2, 0}},
		{"-", "../../etc", []string{".qmail-::/::/etc", ".qmail-default"}, []int{-1, 0}},
	}
	for _, tt := range tests {
		n, at := names(SearchOrder(tt.dash, tt.ext))
		if !reflect.DeepEqual(n, tt.want) || !reflect.DeepEqual(at, tt.at) {
			t.Errorf("SearchOrder(%q, %q) = %q %v, want %q %v", tt.dash, tt.ext, n, at, tt.want, tt.at)
		}
	}
}

func TestEnvelopeLines(t *testing.T) {
	tests := []struct{ sender, rp string }{
		{"", "Return-Path: <>\n"},
		{"bob@example.com", "Return-Path: <bob@example.com>\n"},
		{"a b@example.com", "Return-Path: <\"a b\"@example.com>\n"},
		{"a\"b@x@y", "Return-Path: <\"a\\\"b@x\"@y>\n"},
		{".bob@x", "Return-Path: <\".bob\"@x>\n"},
		{"a..b@x", "Return-Path: <\"a..b\"@x>\n"},
		{"nodomain", "Return-Path: <nodomain>\n"},
		{"a\nb@x", "Return-Path: <\"a\\_b\"@x>\n"},
		{"#@[]", "Return-Path: <#@[]>\n"},
		{"é@x", "Return-Path: <\"é\"@x>\n"},
	}
	for _, tt := range tests {
		if got := RPLine(tt.sender); got != tt.rp {
			t.Errorf("RPLine(%q) = %q, want %q", tt.sender, got, tt.rp)
		}
	}
	if got, want := DTLine("bob\nx", "ex.com"), "Delivered-To: bob_x@ex.com\n"; got != want {
		t.Errorf("DTLine = %q, want %q", got, want)
	}
	when := time.Date(1996, 9, 5, 4, 46, 54, 0, time.FixedZone("X", 3600))
	for sender, want := range map[string]string{
		"":            "From MAILER-DAEMON Thu Sep 05 03:46:54 1996\n",
		"a b\tc\nd@e": "From a-b-c-d@e Thu Sep 05 03:46:54 1996\n",
	} {
		if got := UFLine(sender, when); got != want {
			t.Errorf("UFLine(%q) = %q, want %q", sender, got, want)
		}
	}
}

func TestSplits(t *testing.T) {
	tests := []struct{ in, a, b, c string }{
		{"", "", "", ""},
		{"foo", "", "", ""},
		{"a-b-c-d-e", "b-c-d-e", "c-d-e", "d-e"},
		{"a--b", "-b", "b", ""},
	}
	for _, tt := range tests {
		a, b, c := SplitExt(tt.in)
		if a != tt.a || b != tt.b || c != tt.c {
			t.Errorf("SplitExt(%q) = %q %q %q", tt.in, a, b, c)
		}
	}
	hosts := []struct{ in, a, b, c string }{
		{"a.b.c.d.e", "a.b.c.d", "a.b.c", "a.b"},
		{"example.com", "example", "example", "example"},
		{"localhost", "localhost", "localhost", "localhost"},
		{"", "", "", ""},
	}
	for _, tt := range hosts {
		a, b, c := SplitHost(tt.in)
		if a != tt.a || b != tt.b || c != tt.c {
			t.Errorf("SplitHost(%q) = %q %q %q", tt.in, a, b, c)
		}
	}
}

// mboxReference quotes a body the way qmail-local's line loop does.
func mboxReference(body string) string {
	var b strings.Builder
	lines := strings.SplitAfter(body, "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		if IsFromLine([]byte(l)) {
			b.WriteByte('>')
		}
		b.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	return b.String()
}

func mboxStream(body string, chunk int) string {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	m := NewMboxWriter(w)
	for i := 0; i < len(body); i += chunk {
		m.Write([]byte(body[i:min(i+chunk, len(body))]))
	}
	m.Finish()
	return out.String()
}

func TestMboxWriter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "\n"},
		{"a", "a\n\n"},
		{"a\n", "a\n\n"},
		{"From me\n", ">From me\n\n"},
		{">From me\n>>From x\nFrom", ">>From me\n>>>From x\nFrom\n\n"},
		{"Fromage\nFrom \n From x\n", "Fromage\n>From \n From x\n\n"},
		{">\n>>\n>Fro\n", ">\n>>\n>Fro\n\n"},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 2, 3, 1000} {
			if got := mboxStream(tt.in, chunk); got != tt.want {
				t.Errorf("mbox(%q) in chunks of %d = %q, want %q", tt.in, chunk, got, tt.want)
			}
		}
	}
}

func FuzzMboxWriter(f *testing.F) {
	f.Add("From x\n>From y\nz", 3)
	f.Add(">>>>Fro", 1)
	f.Fuzz(func(t *testing.T, body string, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		if got, want := mboxStream(body, chunk), mboxReference(body); got != want {
			t.Fatalf("chunk %d: got %q, want %q", chunk, got, want)
		}
	})
}

func TestParseArgs(t *testing.T) {
	ok := []string{"bob", "/home/bob", "bob", "", "", "ex.com", "s@x", "./Mailbox"}
	if a, err := ParseArgs(ok); err != nil || !a.DoIt || a.Home != "/home/bob" || a.DefaultDelivery != "./Mailbox" {
		t.Errorf("ParseArgs(%q) = %+v, %v", ok, a, err)
	}
	if a, err := ParseArgs(append([]string{"-n"}, ok...)); err != nil || a.DoIt {
		t.Errorf("-n: %+v, %v", a, err)
	}
	if a, err := ParseArgs(append([]string{"-nN", "--"}, ok...)); err != nil || !a.DoIt {
		t.Errorf("-nN: %+v, %v", a, err)
	}
	for _, bad := range [][]string{
		ok[:7],
		append(ok, "extra"),
		append([]string{"-x"}, ok...),
		{"bob", "home/bob", "bob", "", "", "ex.com", "s@x", "./Mailbox"},
	} {
		_, err := ParseArgs(bad)
		var f *Failure
		if !errors.As(err, &f) || f.Code != 100 || f.Text != usageText {
			t.Errorf("ParseArgs(%q) = %v, want usage", bad, err)
		}
	}
}

func TestErrText(t *testing.T) {
	for err, want := range map[error]string{
		syscall.ENOENT: "file does not exist",
		syscall.EACCES: "access denied",
		syscall.EDQUOT: "disk quota exceeded",
	} {
		if got := ErrText(err); got != want {
			t.Errorf("ErrText(%v) = %q, want %q", err, got, want)
		}
	}
	if !IsTemp(syscall.ENOSPC) || IsTemp(syscall.ENOENT) {
		t.Error("IsTemp: ENOSPC must be temporary, ENOENT not")
	}
}

func TestMaildirNamer(t *testing.T) {
	n := NewMaildirNamer(42, "a/b:c")
	now := time.Unix(1000, 0)
	if got, want := n.Next(now), `1000.42.a\057b\072c`; got != want {
		t.Errorf("first name %q, want %q", got, want)
	}
	if got, want := n.Next(now), `1000.42_2.a\057b\072c`; got != want {
		t.Errorf("second name %q, want %q", got, want)
	}
}

// A name already taken in tmp/ (which the namer never repeats, so only
// another program could have made it) is skipped after a pause of two
// seconds, as in qmail, up to three names; then the delivery defers.
func TestMaildirNameTaken(t *testing.T) {
	for _, taken := range []int{1, 2, 3} {
		dir := t.TempDir()
		for _, sub := range []string{"tmp", "new", "cur"} {
			if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Unix(1700000000, 0)
		names := NewMaildirNamer(42, "host")
		expect := NewMaildirNamer(42, "host")
		for i := 0; i < taken; i++ {
			if err := os.WriteFile(filepath.Join(dir, "tmp", expect.Next(now)), []byte("other"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var slept []time.Duration
		d := &maildirDelivery{namer: names, now: func() time.Time { return now }, sleep: func(p time.Duration) { slept = append(slept, p) }}
		err := d.deliver(dir, strings.NewReader("Subject: x\n\nbody\n"), "", "")
		if taken == 3 {
			if f, ok := err.(*Failure); !ok || f.Code != 111 {
				t.Errorf("three names taken: %v, want a deferral", err)
			}
			if len(slept) != 2 {
				t.Errorf("three names taken: slept %v, want twice", slept)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d names taken: %v", taken, err)
		}
		if want := []time.Duration{2 * time.Second, 2 * time.Second}[:taken]; !reflect.DeepEqual(slept, want) {
			t.Errorf("%d names taken: slept %v, want %v", taken, slept, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "new", expect.Next(now))); err != nil {
			t.Errorf("%d names taken: not delivered under the next name: %v", taken, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "tmp", NewMaildirNamer(42, "host").Next(now))); string(b) != "other" {
			t.Errorf("%d names taken: the other file is now %q", taken, b)
		}
	}
}
