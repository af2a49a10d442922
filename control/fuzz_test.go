package control

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseList checks control_readfile's invariants: no entry holds a
// newline or NUL, there are no more entries than lines and NUL splits,
// and in NUL-free input no entry is empty, starts with '#' or ends in a
// space or tab.
func FuzzParseList(f *testing.F) {
	for _, seed := range []string{"", "a\nb\n", "# c\n\n x \t\n", "a\x00b\n", "\x00\n#\n", "no newline"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lines, err := ParseList(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) > bytes.Count(in, []byte("\n"))+bytes.Count(in, []byte{0})+1 {
			t.Fatalf("%d entries from %q", len(lines), in)
		}
		for _, l := range lines {
			if strings.ContainsAny(l, "\n\x00") {
				t.Fatalf("entry %q holds a newline or NUL", l)
			}
		}
		// Without NULs, every entry is a non-comment line, trimmed.
		if bytes.IndexByte(in, 0) < 0 {
			for _, l := range lines {
				if l == "" || l[0] == '#' || strings.TrimRight(l, " \t") != l {
					t.Fatalf("entry %q should have been skipped or trimmed", l)
				}
			}
		}
	})
}
