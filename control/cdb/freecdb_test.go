package cdb

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// interopRecords has what compatibility depends on: duplicate keys,
// empty keys and values, binary bytes (NUL, 0xff, newline, "->") and
// enough records to fill every hash table with collisions.
func interopRecords() []record {
	recs := []record{
		{"dup", "first"}, {"", ""}, {"dup", "second"},
		{"empty", ""}, {"", "empty key"},
		{"!joe\x00", "joe\x00503\x00100\x00/home/joe\x00\x00"},
		{"bin\xff\x01", "\x00\n->\xff"}, {"dup", "third"},
	}
	for i := 0; i < 5000; i++ {
		recs = append(recs, record{fmt.Sprintf("host%d.example", i), strconv.Itoa(i)})
	}
	return recs
}

// cdbmakeInput renders records in cdbmake's input format, which is also
// cdbdump's output format.
func cdbmakeInput(recs []record) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		fmt.Fprintf(&b, "+%d,%d:%s->%s\n", len(r.key), len(r.value), r.key, r.value)
	}
	b.WriteString("\n")
	return b.Bytes()
}

func runStdin(t *testing.T, stdin string, prog string, args ...string) ([]byte, int) {
	t.Helper()
	f, err := os.Open(stdin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out, exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s %q: %v %s", prog, args, err, stderr.Bytes())
	}
	return out, 0
}

// Files we write are read by freecdb's cdbdump and cdbget.
func TestFreecdbReadsOurs(t *testing.T) {
	t.Parallel()
	cdbdump, cdbget := testenv.Tool(t, "cdbdump", "freecdb"), testenv.Tool(t, "cdbget", "freecdb")
	recs := interopRecords()
	path := filepath.Join(t.TempDir(), "ours.cdb")
	writeRecords(t, path, recs)

	out, code := runStdin(t, path, cdbdump)
	if code != 0 || !bytes.Equal(out, cdbmakeInput(recs)) {
		t.Errorf("cdbdump exit %d; output differs from the records written", code)
	}
	// cdbget refuses an empty key argument (and argv cannot carry NUL):
	// those records are checked by the cdbdump comparison above.
	tests := []struct {
		key, skip, want string
		code            int
	}{
		{"dup", "0", "first", 0},
		{"dup", "1", "second", 0},
		{"dup", "2", "third", 0},
		{"dup", "3", "", 100},
		{"empty", "0", "", 0},
		{"bin\xff\x01", "0", "\x00\n->\xff", 0},
		{"host4999.example", "0", "4999", 0},
		{"host5000.example", "0", "", 100},
	}
	for _, tt := range tests {
		out, code := runStdin(t, path, cdbget, tt.key, tt.skip)
		if code != tt.code || string(out) != tt.want {
			t.Errorf("cdbget %q %s = %q exit %d, want %q exit %d", tt.key, tt.skip, out, code, tt.want, tt.code)
		}
	}
}

// Files cdbmake writes are read by us, and are byte for byte the files
// we write for the same records.
func TestWeReadCdbmake(t *testing.T) {
	t.Parallel()
	cdbmake := testenv.Tool(t, "cdbmake", "freecdb")
	recs := interopRecords()
	dir := t.TempDir()
	theirs := filepath.Join(dir, "theirs.cdb")
	cmd := exec.Command(cdbmake, theirs, theirs+".tmp")
	cmd.Stdin = bytes.NewReader(cdbmakeInput(recs))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cdbmake: %v %s", err, out)
	}
	r, err := Open(theirs)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := map[string][]string{}
	for _, rec := range recs {
		want[rec.key] = append(want[rec.key], rec.value)
	}
	for key, values := range want {
		got := allValues(t, r, key)
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", values) {
			t.Errorf("FindAll(%q) = %q, want %q", key, got, values)
		}
	}
	if _, ok, err := r.Get([]byte("absent")); ok || err != nil {
		t.Errorf("Get(absent) = %v, %v", ok, err)
	}

	ours := filepath.Join(dir, "ours.cdb")
	writeRecords(t, ours, recs)
	a, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("our file (%d bytes) differs from cdbmake's (%d bytes)", len(b), len(a))
	}
}
