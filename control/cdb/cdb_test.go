package cdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

type record struct{ key, value string }

func writeRecords(t *testing.T, path string, recs []record) {
	t.Helper()
	err := WriteFile(path, func(w *Writer) error {
		for _, r := range recs {
			if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func allValues(t *testing.T, r *Reader, key string) []string {
	t.Helper()
	var got []string
	if err := r.FindAll([]byte(key), func(v []byte) bool {
		got = append(got, string(v))
		return true
	}); err != nil {
		t.Fatalf("FindAll(%q): %v", key, err)
	}
	return got
}

func TestHash(t *testing.T) {
	// Values computed by hand from the definition in cdb.txt.
	tests := []struct {
		key  string
		want uint32
	}{
		{"", 5381},
		{"a", (5381*33 ^ 'a')},
		{"ab", ((5381*33^'a')*33 ^ 'b')},
	}
	for _, tt := range tests {
		if got := Hash([]byte(tt.key)); got != tt.want {
			t.Errorf("Hash(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	many := make([]record, 0, 3000)
	for i := 0; i < 3000; i++ {
		many = append(many, record{fmt.Sprintf("key%d", i), fmt.Sprintf("value%d", i*7)})
	}
	tests := []struct {
		name    string
		recs    []record
		lookups map[string][]string
	}{
		{"empty database", nil, map[string][]string{"": nil, "a": nil}},
		{"one record", []record{{"a", "b"}}, map[string][]string{"a": {"b"}, "b": nil, "": nil}},
		{"duplicates keep their order", []record{{"k", "1"}, {"x", "y"}, {"k", "2"}, {"k", "3"}},
			map[string][]string{"k": {"1", "2", "3"}, "x": {"y"}}},
		{"empty key and value", []record{{"", ""}, {"e", ""}, {"", "second"}},
			map[string][]string{"": {"", "second"}, "e": {""}}},
		{"binary keys", []record{{"!joe\x00", "joe\x00503"}, {"\xff\x00\x01", "\x00"}, {"!joe", "wild"}},
			map[string][]string{"!joe\x00": {"joe\x00503"}, "!joe": {"wild"}, "\xff\x00\x01": {"\x00"}, "!jo": nil}},
		{"many records", many, map[string][]string{"key0": {"value0"}, "key2999": {"value20993"}, "key3000": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.cdb")
			writeRecords(t, path, tt.recs)
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for key, want := range tt.lookups {
				got := allValues(t, r, key)
				if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
					t.Errorf("FindAll(%q) = %q, want %q", key, got, want)
				}
				v, ok, err := r.Get([]byte(key))
				if err != nil || ok != (len(want) > 0) || (ok && string(v) != want[0]) {
					t.Errorf("Get(%q) = %q, %v, %v; want first of %q", key, v, ok, err, want)
				}
			}
			var dumped []record
			if err := r.ForEach(func(k, v []byte) bool {
				dumped = append(dumped, record{string(k), string(v)})
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(dumped) != fmt.Sprint(tt.recs) || len(dumped) != len(tt.recs) {
				t.Errorf("ForEach gave %d records, want %d in order", len(dumped), len(tt.recs))
			}
			if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary file left behind: %v", err)
			}
		})
	}
}

func TestFindAllStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.cdb")
	writeRecords(t, path, []record{{"k", "1"}, {"k", "2"}})
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	calls := 0
	if err := r.FindAll([]byte("k"), func([]byte) bool { calls++; return false }); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("fn called %d times after returning false, want 1", calls)
	}
}

// A fill function that fails leaves the old database in place.
func TestWriteFileFailureKeepsOld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.cdb")
	writeRecords(t, path, []record{{"old", "1"}})
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = WriteFile(path, func(w *Writer) error {
		w.Add([]byte("new"), []byte("2"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteFile error = %v, want %v", err, boom)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("database changed after a failed WriteFile")
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestWriteFileUnwritableDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "test.cdb")
	if err := WriteFile(path, func(*Writer) error { return nil }); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}

// Corrupt files must give errors, not panics or huge allocations.
func TestHostileFiles(t *testing.T) {
	valid := func() []byte {
		path := filepath.Join(t.TempDir(), "v.cdb")
		writeRecords(t, path, []record{{"a", "b"}, {"key", "value"}})
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := func(b []byte, at int, v uint32) []byte {
		binary.LittleEndian.PutUint32(b[at:], v)
		return b
	}
	ha := int(Hash([]byte("a")) & 255)
	tests := []struct {
		name    string
		file    []byte
		openErr bool
		dumpErr bool // whether ForEach, which reads no tables, must fail too
	}{
		{"too short", make([]byte, 100), true, true},
		{"table beyond end", put(valid(), ha*8, 0xfffffff0), false, ha == 0},
		{"huge slot count", put(valid(), ha*8+4, 0x7fffffff), false, false},
		{"table inside header", put(valid(), ha*8, 16), false, ha == 0},
		{"record length beyond end", put(valid(), headerSize, 0xffffffff), false, true},
		{"data length beyond end", put(valid(), headerSize+4, 0xffffffff), false, true},
		{"truncated", valid()[:headerSize+12], false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(bytes.NewReader(tt.file), int64(len(tt.file)))
			if tt.openErr {
				if err == nil {
					t.Fatal("New accepted a malformed file")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = r.Get([]byte("a"))
			if err == nil {
				t.Error("Get on a malformed file gave no error")
			}
			if err := r.ForEach(func(k, v []byte) bool { return true }); (err != nil) != tt.dumpErr {
				t.Errorf("ForEach error = %v, want an error: %v", err, tt.dumpErr)
			}
		})
	}
}
