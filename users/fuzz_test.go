package users

import (
	"bytes"
	"github.com/goqmail/goqmail/internal/ascii"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/control/cdb"
)

// FuzzReadAssign: parsing never panics, and every accepted assignment
// renders to a line that parses back to the same assignment.
func FuzzReadAssign(f *testing.F) {
	f.Add([]byte(exampleAssign))
	f.Add([]byte("=a:u:1:2:/h:::\n"))
	f.Add([]byte("+:alias:1:2:/h:-::extra\n.\n"))
	f.Add([]byte("x\x00:::::::\n.\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		as, err := ParseAssign(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, a := range as {
			back, reason := parseAssignLine([]byte(a.String()))
			if reason != "" || back != a {
				t.Fatalf("%+v renders as %q which parses to %+v (%s)", a, a.String(), back, reason)
			}
		}
	})
}

// FuzzLookup builds users/cdb from fuzzed assignments and looks up a
// fuzzed local part: no panics, and any hit comes from an assignment whose
// local part matches.
func FuzzLookup(f *testing.F) {
	f.Add([]byte(exampleAssign), "joe-direct")
	f.Add([]byte(exampleAssign), "")
	f.Add([]byte("+a-:u:1:1:/h:-:p:\n.\n"), "A-B")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, assign []byte, local string) {
		as, err := ParseAssign(bytes.NewReader(assign))
		if err != nil {
			return
		}
		path := filepath.Join(dir, "cdb")
		file, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		w, err := cdb.NewWriter(file)
		if err != nil {
			t.Fatal(err)
		}
		b := NewCDBBuilder(w)
		for _, a := range as {
			if err := b.Add(a); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Finish(); err != nil {
			t.Fatal(err)
		}
		if err := w.Finish(); err != nil {
			t.Fatal(err)
		}
		db, err := cdb.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		e, ok, err := Lookup(db, local)
		if err != nil || !ok {
			return
		}
		lower := ascii.Lower(strings.SplitN(local, "\x00", 2)[0])
		for _, a := range as {
			l := ascii.Lower(a.Local)
			if a.User == e.User && (l == lower || a.Wildcard && strings.HasPrefix(lower, l)) {
				return
			}
		}
		t.Fatalf("Lookup(%q) = %+v matches no assignment", local, e)
	})
}
