package send

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReportReader checks the framing of spawner reports against
// qmail-send's del_dochan: a NUL right after the slot byte does not end
// a report, a slot followed by NUL is an empty (mangled) report, and an
// over-long report keeps exactly reportMax bytes, slot included.
func TestReportReader(t *testing.T) {
	type rep struct {
		slot   byte
		report string
	}
	long := strings.Repeat("x", 2*reportMax)
	for _, tc := range []struct {
		name string
		in   string
		want []rep
	}{
		{"one", "\x02Kdid 0+0+1\n\x00", []rep{{2, "Kdid 0+0+1\n"}}},
		{"two", "\x00Kok\x00\x01Zlater\x00", []rep{{0, "Kok"}, {1, "Zlater"}}},
		{"slot zero, empty report", "\x00\x00\x00Kok\x00", []rep{{0, ""}, {0, "Kok"}}},
		{"empty report", "\x05\x00\x01Kok\x00", []rep{{5, ""}, {1, "Kok"}}},
		{"truncated", "\x03D" + long + "\x00\x04Kok\x00",
			[]rep{{3, "D" + long[:reportMax-2]}, {4, "Kok"}}},
		{"exactly max", "\x03D" + long[:reportMax-3] + "\x00",
			[]rep{{3, "D" + long[:reportMax-3]}}},
		{"unterminated", "\x03Kok", nil},
	} {
		rr := reportReader{r: bufio.NewReader(strings.NewReader(tc.in))}
		var got []rep
		for {
			slot, report, err := rr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got = append(got, rep{slot, report})
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d reports, want %d: %q", tc.name, len(got), len(tc.want), got)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: report %d = %d %q, want %d %q", tc.name, i,
					got[i].slot, got[i].report, tc.want[i].slot, tc.want[i].report)
			}
		}
	}
}

// TestEmptyReportIsMangled feeds finishDelivery a report without a
// letter (a spawner wrote "slot NUL NUL"): qmail logs it as mangled and
// defers; it must not bring qmail-send down.
func TestEmptyReportIsMangled(t *testing.T) {
	var log bytes.Buffer
	s := &Sender{log: &logger{w: &log}, set: &settings{}}
	s.set.concurrency = [numChannels]int{1, 1}
	s.slots[chanLocal] = make([]*delivery, 1)
	m := &message{id: 28}
	p := &pass{msg: m, c: chanLocal, inflight: 1}
	s.slots[chanLocal][0] = &delivery{id: 7, p: p, recip: "u@example.org"}
	s.used[chanLocal] = 1
	s.finishDelivery(chanLocal, 0, "")
	if !strings.Contains(log.String(), "delivery 7: report mangled, will defer\n") {
		t.Fatalf("log %q lacks the mangled report line", log.String())
	}
	if !p.deferred || s.used[chanLocal] != 0 || s.slots[chanLocal][0] != nil {
		t.Fatalf("delivery not finished as deferred: deferred=%v used=%d", p.deferred, s.used[chanLocal])
	}
}

func FuzzReportReader(f *testing.F) {
	f.Add([]byte("\x02Kdid 0+0+1\n\x00\x00\x00\x05\x00"))
	f.Add(append([]byte("\x01D"), bytes.Repeat([]byte("y"), reportMax+5)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := reportReader{r: bufio.NewReader(bytes.NewReader(in))}
		for {
			_, report, err := rr.next()
			if err != nil {
				return
			}
			if len(report) > reportMax-1 || strings.IndexByte(report, 0) >= 0 {
				t.Fatalf("report of %d bytes with NUL at %d", len(report), strings.IndexByte(report, 0))
			}
		}
	})
}
