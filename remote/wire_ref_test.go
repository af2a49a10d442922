package remote

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// writeBodyByByte is writeBody as it was before it copied runs of
// bytes: one byte at a time. It is the reference the fuzz target holds
// writeBody to.
func writeBodyByByte(dst *bufio.Writer, src io.Reader) error {
	in := bufio.NewReaderSize(src, 64*1024)
	atLineStart := true
	var last byte = '\n'
	for {
		c, err := in.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &readError{err}
		}
		switch {
		case c == '\n':
			if last != '\r' {
				dst.WriteString("\r\n")
			}
			atLineStart = true
		case c == '\r':
			dst.WriteString("\r\n")
			atLineStart = true
		default:
			if atLineStart && c == '.' {
				dst.WriteByte('.')
			}
			dst.WriteByte(c)
			atLineStart = false
		}
		last = c
	}
	if last != '\n' {
		return errPartialLine
	}
	return nil
}

// FuzzWriteBodyMatchesByByte: whatever the message and however the reads
// are cut (one byte at a time, half of each buffer), writeBody sends
// exactly what the byte-at-a-time version sends, with the same error.
func FuzzWriteBodyMatchesByByte(f *testing.F) {
	for _, seed := range []string{"", "a\nb\n", ".\n..x\n.\n", "a\r\nb\r\n", "a\rb\n", "x\r.\rMAIL FROM:<a@b>\r\n",
		"a\r\r\n", "\xff\x00\n", "a\nb", "a\r", "long line without end " + string(bytes.Repeat([]byte("x"), 40000)) + "\n.\n"} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(1))
		f.Add([]byte(seed), uint8(2))
	}
	f.Fuzz(func(t *testing.T, msg []byte, cut uint8) {
		reader := func() io.Reader {
			switch cut % 3 {
			case 1:
				return iotest.OneByteReader(bytes.NewReader(msg))
			case 2:
				return iotest.HalfReader(bytes.NewReader(msg))
			}
			return bytes.NewReader(msg)
		}
		var want, got bytes.Buffer
		ww, gw := bufio.NewWriter(&want), bufio.NewWriter(&got)
		wantErr := writeBodyByByte(ww, reader())
		gotErr := writeBody(gw, reader())
		ww.Flush()
		gw.Flush()
		if !errors.Is(gotErr, wantErr) && !(gotErr == nil && wantErr == nil) {
			t.Fatalf("error %v, want %v", gotErr, wantErr)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("sent %q\nwant %q", got.Bytes(), want.Bytes())
		}
	})
}
