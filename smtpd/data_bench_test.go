package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// benchMessage is a 4 KiB DATA stream as a client sends it: a header
// with hop lines, a body of 72-column lines, one stuffed dot, the end
// marker.
func benchMessage() []byte {
	var b bytes.Buffer
	b.WriteString("Received: from relay.example (192.0.2.7)\r\n  by mx.example with SMTP; 4 Mar 2026 05:06:07 -0000\r\n")
	b.WriteString("Delivered-To: someone@example.org\r\n")
	b.WriteString("From: Sender <sender@example.net>\r\nTo: someone@example.org\r\nSubject: benchmark\r\n\r\n")
	b.WriteString("..a stuffed line\r\n")
	line := strings.Repeat("x", 70) + "\r\n"
	const end = "\r\n.\r\n"
	for b.Len()+len(line)+len(end) <= 4096 {
		b.WriteString(line)
	}
	for b.Len()+len(end) < 4096 {
		b.WriteByte('y')
	}
	b.WriteString(end)
	return b.Bytes()
}

// BenchmarkReadData runs the DATA path as the session does: client bytes
// through a 4 KiB bufio.Reader into the messageSink over a 32 KiB
// bufio.Writer.
func BenchmarkReadData(b *testing.B) {
	msg := benchMessage()
	if len(msg) != 4096 {
		b.Fatalf("message is %d bytes", len(msg))
	}
	src := bytes.NewReader(msg)
	r := bufio.NewReaderSize(src, 4096)
	bw := bufio.NewWriterSize(io.Discard, 32<<10)
	sink := &messageSink{w: bw}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(msg)
		r.Reset(src)
		sink.n = 0
		if _, err := ReadData(r, sink); err != nil {
			b.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
}
