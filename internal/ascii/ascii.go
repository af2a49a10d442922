// Package ascii has qmail's byte-wise case handling (case_lowerb,
// case_diffb): only A-Z and a-z fold, every other byte passes unchanged,
// so results keep the input's length and offsets.
package ascii

// Lower lowercases A-Z only.
func Lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s // nothing to fold: no copy
}

// EqualFold reports whether a and b are equal with A-Z folded to a-z.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerByte(a[i]) != lowerByte(b[i]) {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
