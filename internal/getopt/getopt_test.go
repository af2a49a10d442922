package getopt

import (
	"bytes"
	"strings"
	"testing"
)

func TestParser(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string // options seen, "x=arg" for arguments, then "|" and the rest
		err  string
	}{
		{[]string{"p", "-a", "-h", "x"}, "a h |x", ""},
		{[]string{"p", "-ahfS", "x"}, "a h f=S |x", ""},
		{[]string{"p", "-f", "S", "-n", "--", "-a"}, "f=S n |-a", ""},
		{[]string{"p", "-", "-a"}, "|- -a", ""},
		{[]string{"p", "x", "-a"}, "|x -a", ""},
		{[]string{"p", "-f"}, "? ", "p: option requires an argument -- f\n"},
		{[]string{"/usr/bin/p", "-q"}, "? ", "p: illegal option -- q\n"},
		{[]string{"p", "-f", ""}, "f= |", ""},
		{[]string{"p"}, "|", ""},
	} {
		var errb bytes.Buffer
		g := New(tc.argv[0], tc.argv[1:], "ahnf:", &errb)
		var got strings.Builder
		for {
			c := g.Next()
			if c == Done {
				got.WriteString("|" + strings.Join(g.Rest(), " "))
				break
			}
			got.WriteByte(byte(c))
			if c == 'f' {
				got.WriteString("=" + g.Arg())
			}
			got.WriteByte(' ')
			if c == '?' {
				break
			}
		}
		if got.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.argv, got.String(), tc.want)
		}
		if errb.String() != tc.err {
			t.Errorf("%q: stderr %q, want %q", tc.argv, errb.String(), tc.err)
		}
	}
}

func TestSilent(t *testing.T) {
	g := New("p", []string{"-z"}, "f", nil)
	if c := g.Next(); c != '?' {
		t.Errorf("Next = %d, want '?'", c)
	}
}

func FuzzParser(f *testing.F) {
	f.Add("-ab\x00-c\x00x\x00--\x00y", "abc:")
	f.Fuzz(func(t *testing.T, argv, opts string) {
		g := New("p", strings.Split(argv, "\x00"), opts, nil)
		for i := 0; g.Next() != Done; i++ {
			if i > len(argv)+1 {
				t.Fatal("Next does not end")
			}
		}
		_ = g.Rest()
	})
}
