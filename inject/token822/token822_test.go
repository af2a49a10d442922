package token822

import (
	"bytes"
	"strings"
	"testing"
)

// show renders tokens compactly: words with their type letter, specials
// as themselves.
func show(toks []Token) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.Type {
		case Atom:
			b.WriteString("A{" + t.Text + "}")
		case Quote:
			b.WriteString("Q{" + t.Text + "}")
		case Literal:
			b.WriteString("L{" + t.Text + "}")
		case Comment:
			b.WriteString("C{" + t.Text + "}")
		default:
			b.WriteString(map[Type]string{Left: "<", Right: ">", At: "@", Comma: ",", Semi: ";", Colon: ":", Dot: "."}[t.Type])
		}
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"", "", false},
		{"a@b.c", "A{a} @ A{b} . A{c}", false},
		{"  a \t\r\n b ", "A{a} A{b}", false},
		{`"q \" s"`, `Q{q " s}`, false},
		{"(c (nested) x)", "C{c nested x}", false},
		{"[1.2.3.4]", "L{1.2.3.4}", false},
		{"[a[b]", "L{a[b}", false},
		{`[a\]b]`, "L{a]b}", false},
		{"<>,;:", "< > , ; :", false},
		{`a\,b`, "A{a,b}", false},
		{`a\)b`, "Q{a)b}", false},
		{`a\\b`, `Q{a\b}`, false},
		{"a\x01b", "Q{a\x01b}", false},
		{"\xc3\xa9", "Q{\xc3\xa9}", false},
		{`a\`, "A{a}", false},
		{`\`, "A{}", false},
		{"a+b=c", "A{a+b=c}", false},
		{`"unterminated`, "", true},
		{`"ends in escape\`, "", true},
		{"(open", "", true},
		{"[open", "", true},
		{"a)", "Q{a)}", false},
		{"a]b", "Q{a]b}", false},
		{")a", "", true},
		{"]a", "", true},
		{"((a)", "", true},
	} {
		got, err := Parse([]byte(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("Parse(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if s := show(got); !tc.err && s != tc.want {
			t.Errorf("Parse(%q) = %s, want %s", tc.in, s, tc.want)
		}
	}
}

func TestUnparse(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		lineLen  int
	}{
		{"To: a@b", "To: a@b\n", 80},
		{"To:a,b,c", "To: a, b, c\n", 80},
		{`X: "q\"s" (c\)) [l\]]`, "X: \"q\\\"s\" (c\\)) [l\\]]\n", 80},
		{"X: a <b@c>", "X: a <b@c>\n", 80},
		{"X: aaaa,bbbb,cccc", "X: aaaa,\n  bbbb,\n  cccc\n", 10},
		{"X: aaaa,bbbb,cccc", "X: aaaa, bbbb, cccc\n", 0},
		{"X: g: a, b;", "X: g: a, b;\n", 80},
		{"", "\n", 80},
	} {
		toks, err := Parse([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(Unparse(toks, tc.lineLen)); got != tc.want {
			t.Errorf("Unparse(%q, %d) = %q, want %q", tc.in, tc.lineLen, got, tc.want)
		}
	}
	// Fold where the line no longer fits, as token822_unparse does.
	var addrs []string
	for i := 0; i < 8; i++ {
		addrs = append(addrs, "user"+strings.Repeat("x", i)+"@example.com")
	}
	toks, _ := Parse([]byte("To: " + strings.Join(addrs, ", ")))
	want := "To: user@example.com, userx@example.com, userxx@example.com,\n" +
		"  userxxx@example.com, userxxxx@example.com, userxxxxx@example.com,\n" +
		"  userxxxxxx@example.com, userxxxxxxx@example.com\n"
	if got := string(Unparse(toks, 80)); got != want {
		t.Errorf("folding:\n got %q\nwant %q", got, want)
	}
}

func TestUnquote(t *testing.T) {
	toks, _ := Parse([]byte(`"a b" (c) @ [1.2.3.4] . x , ; : < >`))
	if got, want := Unquote(toks), "a b@[1.2.3.4].x,;:<>"; got != want {
		t.Errorf("Unquote = %q, want %q", got, want)
	}
}

func TestAddrList(t *testing.T) {
	for _, tc := range []struct {
		in    string
		addrs string // the addresses handed to the callback, in call order, reading order
		out   string
		err   bool
	}{
		{"To: a, b", "b|a", "To: a, b\n", false},
		{"To: a b", "b|a", "To: a, b\n", false},
		{"To: Name <a@b>, c", "c|a@b", "To: Name <a@b>, c\n", false},
		{"To: <>", "", "To: <>\n", false},
		{"To: g: a, b;, c", "c|b|a", "To: g: a, b;, c\n", false},
		{"To: g: ;", "", "To: g: ;\n", false},
		{"To: a(c)@b", "a@b", "To: a@b (c)\n", false},
		{"To: (c) a", "a", "To: a (c)\n", false},
		{"To: \"Q\" <@r:a@b>", "@r:a@b", "To: \"Q\" <@r: a@b>\n", false},
		{"To:", "", "To:\n", false},
		{"To: a; b", "b|a", "To: a;, b\n", false},
		{"To: @a:b@c", "", "", true},
		{"To: a@b>", "", "", true},
		{"To: g: a;;", "", "", true},
	} {
		toks, err := Parse([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		out, err := AddrList(toks, func(addr []Token) []Token {
			c := append([]Token(nil), addr...)
			Reverse(c)
			seen = append(seen, Unquote(c))
			return addr
		})
		if (err != nil) != tc.err {
			t.Errorf("AddrList(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if tc.err {
			continue
		}
		if got := strings.Join(seen, "|"); got != tc.addrs {
			t.Errorf("AddrList(%q) addresses %q, want %q", tc.in, got, tc.addrs)
		}
		if got := string(Unparse(out, 80)); got != tc.out {
			t.Errorf("AddrList(%q) = %q, want %q", tc.in, got, tc.out)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"To: a@b, \"q\" <x@y> (c)", "To: g: a;, <@r:b@c>", `X: a\,b [l] (n(e)st)`, "", "To: a)"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		toks, err := Parse(in)
		if err != nil {
			return
		}
		out := Unparse(toks, 80)
		if !bytes.HasSuffix(out, []byte("\n")) {
			t.Fatalf("Unparse(%q) = %q: no final newline", in, out)
		}
		// What qmail writes, it can read back (not always to the same
		// tokens: an escaped space or '<' in an atom is written bare, as
		// qmail does).
		if _, err := Parse(out); err != nil {
			t.Fatalf("Unparse(%q) = %q does not parse again: %v", in, out, err)
		}
		_, _ = AddrList(toks, func(addr []Token) []Token { return append(addr, Token{Type: Atom, Text: "x"}) })
	})
}
