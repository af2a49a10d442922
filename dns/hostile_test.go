package dns

import (
	"encoding/binary"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// TestHostileWire: replies built byte by byte that no honest server
// sends. Each must be dropped (verdictIgnore), never panic or be taken as
// an answer.
func TestHostileWire(t *testing.T) {
	query := new(mdns.Msg)
	query.SetQuestion("mx.example.", mdns.TypeMX)
	header := func(qd, an uint16) []byte {
		h := make([]byte, headerLen)
		binary.BigEndian.PutUint16(h, query.Id)
		binary.BigEndian.PutUint16(h[2:], flagQR)
		binary.BigEndian.PutUint16(h[4:], qd)
		binary.BigEndian.PutUint16(h[6:], an)
		return h
	}
	question := []byte("\x02mx\x07example\x00\x00\x0f\x00\x01")
	longName := strings.Repeat("\x3f"+strings.Repeat("a", 63), 5) + "\x00" // 320 bytes
	tests := []struct {
		name string
		raw  []byte
	}{
		{"compression pointer to itself", append(header(1, 0), 0xc0, 12, 0, 15, 0, 1)},
		{"compression loop in answer", append(append(header(1, 1), question...), 0xc0, 28, 0, 15, 0, 1, 0, 0, 0, 60, 0, 2, 0, 10)},
		{"counts far beyond the data", append(append(header(1, 0xffff), question...), 0xc0, 12)},
		{"question name over 255 bytes", append(append(header(1, 0), longName...), 0, 15, 0, 1)},
		{"header only with a question count", header(1, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, reply, err := checkReply(query, tc.raw)
			if v != verdictIgnore || reply != nil || err == nil {
				t.Fatalf("verdict %d, reply %v, err %v", v, reply, err)
			}
		})
	}
}
