package cdb

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// expandFuzzInput turns a short fuzz input into a cdb file: its first 8
// bytes become all 256 header entries, so every key uses the same hash
// table, and the rest follows the header. Keeping inputs far smaller than
// the 2048-byte header lets the fuzzer mutate what matters. Inputs of
// header size or more are used as they are.
func expandFuzzInput(in []byte) []byte {
	if len(in) >= headerSize {
		return in
	}
	var entry [8]byte
	copy(entry[:], in)
	file := bytes.Repeat(entry[:], 256)
	if len(in) > 8 {
		file = append(file, in[8:]...)
	}
	return file
}

// compactCDB builds the short form expandFuzzInput expands: one shared
// table holding every record.
func compactCDB(records [][2]string) []byte {
	var body []byte
	type slotEntry struct{ hash, pos uint32 }
	var entries []slotEntry
	for _, r := range records {
		entries = append(entries, slotEntry{Hash([]byte(r[0])), uint32(headerSize + len(body))})
		body = binary.LittleEndian.AppendUint32(body, uint32(len(r[0])))
		body = binary.LittleEndian.AppendUint32(body, uint32(len(r[1])))
		body = append(body, r[0]...)
		body = append(body, r[1]...)
	}
	n := 2 * len(entries)
	table := make([]slotEntry, n)
	for _, e := range entries {
		at := int(e.hash>>8) % n
		for table[at].pos != 0 {
			at = (at + 1) % n
		}
		table[at] = e
	}
	in := binary.LittleEndian.AppendUint32(nil, uint32(headerSize+len(body)))
	in = binary.LittleEndian.AppendUint32(in, uint32(n))
	in = append(in, body...)
	for _, e := range table {
		in = binary.LittleEndian.AppendUint32(in, e.hash)
		in = binary.LittleEndian.AppendUint32(in, e.pos)
	}
	return in
}

func TestCompactCDB(t *testing.T) {
	file := expandFuzzInput(compactCDB([][2]string{{"a", "b"}, {"a", "c"}, {"key", "value"}}))
	r, err := New(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if got := allValues(t, r, "a"); len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Errorf("FindAll(a) = %q", got)
	}
	if got := allValues(t, r, "key"); len(got) != 1 || got[0] != "value" {
		t.Errorf("FindAll(key) = %q", got)
	}
}

// FuzzReader feeds arbitrary files to the reader: it must never panic and
// never return more data than the file holds.
func FuzzReader(f *testing.F) {
	f.Add(compactCDB([][2]string{{"a", "b"}, {"a", "c"}, {"", ""}}), []byte("a"))
	f.Add(compactCDB([][2]string{{"!joe\x00", "joe\x00503\x00100\x00/home/joe\x00\x00"}, {"", "-"}}), []byte("!joe\x00"))
	f.Add([]byte{}, []byte("x"))
	f.Fuzz(func(t *testing.T, in, key []byte) {
		file := expandFuzzInput(in)
		r, err := New(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			return
		}
		r.FindAll(key, func(v []byte) bool {
			if len(v) > len(file) {
				t.Fatalf("value of %d bytes from a %d-byte file", len(v), len(file))
			}
			return true
		})
		r.ForEach(func(k, v []byte) bool { return true })
	})
}
