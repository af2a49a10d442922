package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// refReadData is ReadData as it was before it worked on runs: one byte at
// a time through blast's state machine. It is the reference the run
// version must match bit for bit.
func refReadData(r io.ByteReader, w io.ByteWriter) (hops int, err error) {
	const (
		stMid = iota
		stLineDot
		stDot
		stDotCR
		stCR
	)
	var h refHopCounter
	h.reset()
	state := stLineDot
	for {
		ch, err := r.ReadByte()
		if err != nil {
			return h.hops, err
		}
		h.feed(ch)
		switch state {
		case stMid:
			if ch == '\n' {
				return h.hops, ErrStrayNewline
			}
			if ch == '\r' {
				state = stCR
				continue
			}
		case stLineDot:
			if ch == '\n' {
				return h.hops, ErrStrayNewline
			}
			if ch == '.' {
				state = stDot
				continue
			}
			if ch == '\r' {
				state = stCR
				continue
			}
			state = stMid
		case stDot:
			if ch == '\n' {
				return h.hops, ErrStrayNewline
			}
			if ch == '\r' {
				state = stDotCR
				continue
			}
			state = stMid
		case stDotCR:
			if ch == '\n' {
				return h.hops, nil
			}
			for _, b := range []byte{'.', '\r'} {
				if err := w.WriteByte(b); err != nil {
					return h.hops, err
				}
			}
			if ch == '\r' {
				state = stCR
				continue
			}
			state = stMid
		case stCR:
			if ch == '\n' {
				state = stLineDot
				break
			}
			if ch != '\r' {
				if err := w.WriteByte('\r'); err != nil {
					return h.hops, err
				}
				state = stMid
			}
		}
		if err := w.WriteByte(ch); err != nil {
			return h.hops, err
		}
	}
}

// refHopCounter is the reference copy of hopCounter, so that a change
// there cannot hide from the comparison.
type refHopCounter struct {
	inHeader                 bool
	pos                      int
	maybeRecv, maybeEnd, mDl bool
	hops                     int
}

func (h *refHopCounter) reset() {
	h.inHeader = true
	h.pos = 0
	h.maybeRecv, h.maybeEnd, h.mDl = true, true, true
}

func (h *refHopCounter) feed(ch byte) {
	if !h.inHeader {
		return
	}
	if h.pos < 9 {
		if ch != "delivered"[h.pos] && ch != "DELIVERED"[h.pos] {
			h.mDl = false
		}
		if h.mDl && h.pos == 8 {
			h.hops++
		}
		if h.pos < 8 {
			if ch != "received"[h.pos] && ch != "RECEIVED"[h.pos] {
				h.maybeRecv = false
			}
			if h.maybeRecv && h.pos == 7 {
				h.hops++
			}
		}
		if h.pos < 2 {
			if ch != "\r\n"[h.pos] {
				h.maybeEnd = false
			}
			if h.maybeEnd && h.pos == 1 {
				h.inHeader = false
			}
		}
		h.pos++
	}
	if ch == '\n' {
		h.pos = 0
		h.maybeRecv, h.maybeEnd, h.mDl = true, true, true
	}
}

// refMessageSink is messageSink as it was: it counts and stores one byte
// at a time.
type refMessageSink struct {
	w     *bufio.Writer
	limit int64
	n     int64
}

func (m *refMessageSink) WriteByte(c byte) error {
	m.n++
	if m.limit > 0 && m.n > m.limit {
		return nil
	}
	return m.w.WriteByte(c)
}

// shortReader hands out data in reads whose sizes cycle through sizes
// (each at least 1), the way a network connection splits a stream.
type shortReader struct {
	data  []byte
	sizes []byte
	next  int
}

func (s *shortReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := len(s.data)
	if len(s.sizes) > 0 {
		n = int(s.sizes[s.next%len(s.sizes)])%64 + 1
		s.next++
	}
	n = min(n, len(p), len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// failingSink stores bytes until it holds max of them, then fails.
type failingSink struct {
	buf bytes.Buffer
	max int
}

var errSinkFull = errors.New("sink full")

func (f *failingSink) WriteByte(c byte) error {
	if f.buf.Len() >= f.max {
		return errSinkFull
	}
	return f.buf.WriteByte(c)
}

func (f *failingSink) Write(p []byte) (int, error) {
	room := f.max - f.buf.Len()
	if len(p) > room {
		f.buf.Write(p[:room])
		return room, errSinkFull
	}
	return f.buf.Write(p)
}

// byteOnlySink takes single bytes only, so ReadData falls back to storing
// runs byte by byte.
type byteOnlySink struct{ buf bytes.Buffer }

func (b *byteOnlySink) WriteByte(c byte) error { return b.buf.WriteByte(c) }

// dataRun is one pass of a DATA reader over an input: what it stored,
// counted and returned, and what it left unread for the next command.
type dataRun struct {
	stored   string
	hops     int
	err      error
	count    int64
	overflow bool
	rest     string
}

func (d dataRun) String() string {
	return fmt.Sprintf("stored %q hops %d err %v count %d overflow %v rest %q",
		d.stored, d.hops, d.err, d.count, d.overflow, d.rest)
}

// sameAsReference runs the reference and ReadData over in, ReadData's
// input split into reads of the given sizes through a bufio.Reader of
// bufSize, both storing through a messageSink with databytes limit, and
// reports any difference. It also checks a byte-only sink and a sink
// that fails after failAt bytes.
func sameAsReference(in []byte, sizes []byte, bufSize int, limit int64, failAt int) error {
	var refOut bytes.Buffer
	refSink := &refMessageSink{w: bufio.NewWriter(&refOut), limit: limit}
	refIn := bufio.NewReader(bytes.NewReader(in))
	var want dataRun
	want.hops, want.err = refReadData(refIn, refSink)
	refSink.w.Flush()
	want.stored, want.count = refOut.String(), refSink.n
	want.overflow = limit > 0 && refSink.n > limit
	restBytes, _ := io.ReadAll(refIn)
	want.rest = string(restBytes)

	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 16)
	sink := &messageSink{w: bw, limit: limit}
	r := bufio.NewReaderSize(&shortReader{data: in, sizes: sizes}, bufSize)
	var got dataRun
	got.hops, got.err = ReadData(r, sink)
	if err := bw.Flush(); err != nil {
		return err
	}
	got.stored, got.count, got.overflow = out.String(), sink.n, sink.overflow()
	restBytes, _ = io.ReadAll(r)
	got.rest = string(restBytes)
	if got != want {
		return fmt.Errorf("messageSink, reads %v, buffer %d, limit %d:\n got %v\nwant %v", sizes, bufSize, limit, got, want)
	}

	// Without a limit, the reference's output is the whole stored message.
	var whole bytes.Buffer
	refWhole := bufio.NewWriter(&whole)
	refHops, refErr := refReadData(bufio.NewReader(bytes.NewReader(in)), refWhole)
	refWhole.Flush()

	var only byteOnlySink
	hops, err := ReadData(bufio.NewReaderSize(&shortReader{data: in, sizes: sizes}, bufSize), &only)
	if only.buf.String() != whole.String() || hops != refHops || err != refErr {
		return fmt.Errorf("byte-only sink: got %q, %d, %v; want %q, %d, %v", only.buf.String(), hops, err, whole.String(), refHops, refErr)
	}

	refFail := &failingSink{max: failAt}
	refIn = bufio.NewReader(bytes.NewReader(in))
	refHops, refErr = refReadData(refIn, refFail)
	restBytes, _ = io.ReadAll(refIn)
	refRest := string(restBytes)
	fail := &failingSink{max: failAt}
	r = bufio.NewReaderSize(&shortReader{data: in, sizes: sizes}, bufSize)
	hops, err = ReadData(r, fail)
	restBytes, _ = io.ReadAll(r)
	if fail.buf.String() != refFail.buf.String() || hops != refHops || err != refErr || string(restBytes) != refRest {
		return fmt.Errorf("sink failing after %d bytes: got %q, %d, %v, rest %q; want %q, %d, %v, rest %q",
			failAt, fail.buf.String(), hops, err, restBytes, refFail.buf.String(), refHops, refErr, refRest)
	}
	return nil
}

// dataInputs are DATA streams that reach every state of the machine, hop
// lines cut at every length, and the smuggling variants.
var dataInputs = []string{
	".\r\n",
	"a\r\nb\r\n.\r\n",
	"..a\r\n..\r\n.\r\n",
	".x\r\n.\r\n",
	"a\rb\r\n.\r\n",
	"a\r\r\n.\r\n",
	".\rx\r\n.\r\n",
	".\r\r\n.\r\n",
	"a\r\n.\r\nNOOP\r\n",
	"a\n.\n",
	"a\r\n.\nMAIL FROM:<x>\r\n.\r\n",
	"a\n.\r\n",
	"a\r.\rMAIL FROM:<x>\r\n.\r\n",
	"a\r.\r\nx\r\n.\r\n",
	"a\r\n.\r\n\n",
	"\n.\r\n",
	"a\r\n.\r\rb\r\n.\r\n",
	"a\r\n",
	"",
	"Received: x\r\nDelivered-To: y\r\nreceivedx\r\nDELIVERED\r\n\r\nReceived: body\r\n.\r\n",
	"Receive: x\r\nDeliver: y\r\n.\r\n",
	" Received: folded\r\n.\r\n",
	"Subject: x\r\n\r\nReceived: x\r\n.\r\n",
	"\r\nReceived: x\r\n.\r\n",
	"ReceivedReceivedReceived\r\nDeliveredDelivered\r\nRECEIVED\rx\r\nRece\rived\r\n\r\n.\r\n",
	"Delivered\r\n\r\r\nReceived\r\n.\r\n",
	"X-Long: " + strings.Repeat("abcdefgh", 40) + "\r\n\r\n" + strings.Repeat("body line\r\n", 20) + ".\r\n",
	"\r\n" + strings.Repeat("z", 300) + "\r\n.\r\nQUIT\r\n",
	strings.Repeat("Received: hop\r\n", 120) + "\r\n.\r\n",
}

// TestReadDataMatchesReference checks every input at every fixed read size
// against the byte-at-a-time reference, with and without a small
// databytes limit.
func TestReadDataMatchesReference(t *testing.T) {
	inputs := append([]string{string(benchMessage())}, dataInputs...)
	for _, in := range inputs {
		for size := range byte(64) {
			for _, limit := range []int64{0, 1, 5, 64, int64(len(in))} {
				if err := sameAsReference([]byte(in), []byte{size}, 16+int(size)%7, limit, int(size)); err != nil {
					t.Fatalf("input %q: %v", in, err)
				}
			}
		}
	}
}

func FuzzReadDataMatchesReference(f *testing.F) {
	for i, in := range dataInputs {
		f.Add([]byte(in), []byte{byte(i), 3, 0}, uint8(i), uint8(i*7))
	}
	f.Add(benchMessage(), []byte{}, uint8(0), uint8(255))
	f.Add([]byte("Received: a\r\n\r\nbody\r\n.\r\n"), []byte{0}, uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, in, sizes []byte, limit, failAt uint8) {
		bufSize := 16
		if len(sizes) > 0 {
			bufSize += int(sizes[0]) % 48
		}
		if err := sameAsReference(in, sizes, bufSize, int64(limit), int(failAt)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMessageSinkWrite stores the same bytes in runs and byte by byte:
// counts, overflow and stored bytes agree for every limit around the
// message size.
func TestMessageSinkWrite(t *testing.T) {
	tests := []struct {
		name string
		runs []string
	}{
		{"one run", []string{"hello world"}},
		{"runs", []string{"he", "llo", " ", "world"}},
		{"empty runs", []string{"", "hello", "", " world", ""}},
		{"single bytes", strings.Split("hello world", "")},
	}
	for _, tt := range tests {
		for limit := range int64(14) {
			var want, got bytes.Buffer
			ref := &refMessageSink{w: bufio.NewWriter(&want), limit: limit}
			bw := bufio.NewWriter(&got)
			sink := &messageSink{w: bw, limit: limit}
			for _, run := range tt.runs {
				for _, c := range []byte(run) {
					ref.WriteByte(c)
				}
				if n, err := sink.Write([]byte(run)); n != len(run) || err != nil {
					t.Fatalf("%s, limit %d: Write(%q) = %d, %v", tt.name, limit, run, n, err)
				}
			}
			ref.w.Flush()
			bw.Flush()
			refOverflow := limit > 0 && ref.n > limit
			if got.String() != want.String() || sink.n != ref.n || sink.overflow() != refOverflow {
				t.Errorf("%s, limit %d: stored %q, n %d, overflow %v; want %q, %d, %v",
					tt.name, limit, got.String(), sink.n, sink.overflow(), want.String(), ref.n, refOverflow)
			}
		}
	}
}
