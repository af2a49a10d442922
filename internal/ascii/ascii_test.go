package ascii

import "testing"

func TestLower(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"Example.COM", "example.com"},
		{"\xc4\xb0Z", "\xc4\xb0z"}, // non-ASCII bytes unchanged, length kept
		{"A\x00B", "a\x00b"},
	} {
		if got := Lower(c.in); got != c.want {
			t.Errorf("Lower(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEqualFold(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"HELO", "helo", true},
		{"Received", "received", true},
		{"K", "\u212a", false}, // Kelvin sign: Unicode folding would say equal
		{"ab", "abc", false},
	} {
		if got := EqualFold(c.a, c.b); got != c.want {
			t.Errorf("EqualFold(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
