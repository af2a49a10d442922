package qmtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadNetstring(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
		err  error
	}{
		{in: "5:hello,", max: 10, want: "hello"},
		{in: "0:,", max: 10, want: ""},
		{in: "005:hello,rest", max: 10, want: "hello"},
		{in: "", max: 10, err: io.EOF},
		{in: "5", max: 10, err: io.ErrUnexpectedEOF},
		{in: "5:hel", max: 10, err: io.ErrUnexpectedEOF},
		{in: "5:hello", max: 10, err: io.ErrUnexpectedEOF},
		{in: "5:hello;", max: 10, err: ErrMalformed},
		{in: ":,", max: 10, err: ErrMalformed},
		{in: "x:,", max: 10, err: ErrMalformed},
		{in: "-1:,", max: 10, err: ErrMalformed},
		{in: " 5:hello,", max: 10, err: ErrMalformed},
		{in: "11:hello world,", max: 10, err: ErrTooLong},
		{in: "1000000000000000000:", max: MaxLength, err: ErrTooLong},
		{in: "99999999999999999999999999:", max: 1 << 62, err: ErrTooLong},
	}
	for _, tt := range tests {
		got, err := ReadNetstring(bufio.NewReader(strings.NewReader(tt.in)), tt.max)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("ReadNetstring(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ReadNetstring(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestAppendNetstring(t *testing.T) {
	for in, want := range map[string]string{"": "0:,", "hello": "5:hello,", strings.Repeat("a", 12): "12:aaaaaaaaaaaa,"} {
		if got := string(AppendNetstring(nil, in)); got != want {
			t.Errorf("AppendNetstring(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzReadNetstring checks the reader against the encoder: whatever it
// accepts re-encodes to exactly the bytes it consumed, and it never
// allocates beyond its maximum.
func FuzzReadNetstring(f *testing.F) {
	for _, s := range []string{"5:hello,", "0:,", "3:abc", "1000000000000000000:", "12:a,", "x", "007:abcdefg,", "2:\x00\x00,"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 64
		r := bufio.NewReader(bytes.NewReader(in))
		got, err := ReadNetstring(r, max)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLong) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if len(got) > max {
			t.Fatalf("returned %d bytes, max %d", len(got), max)
		}
		consumed := in[:len(in)-r.Buffered()]
		// Leading zeros are accepted, so compare after the length.
		colon := bytes.IndexByte(consumed, ':')
		if !bytes.Equal(consumed[colon:], AppendNetstring(nil, string(got))[len(AppendNetstring(nil, string(got)))-len(got)-2:]) {
			t.Fatalf("consumed %q, decoded %q", consumed, got)
		}
		for _, c := range consumed[:colon] {
			if c < '0' || c > '9' {
				t.Fatalf("accepted length %q", consumed[:colon])
			}
		}
	})
}
