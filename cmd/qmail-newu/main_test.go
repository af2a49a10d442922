package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/users"
)

func writeAssign(t *testing.T, home, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(home, "users", "assign"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const assign = `=Joe.Shmoe:joe:503:78:/home/joe:::
+joe-:joe:507:100:/home/joe:-::
+:alias:7790:2108:/var/qmail/alias:-::
+Lists:lists:601:601:/home/lists:-:pre:
=joe.shmoe:second:1:1:/x:-:e:junk
.
`

// The records qmail-newu writes for assign, in order: simple keys end
// in NUL, wildcard keys do not, values have six fields without a final
// NUL, and the empty key lists the wildcard characters as written.
var wantRecords = [][2]string{
	{"!joe.shmoe\x00", "joe\x00503\x0078\x00/home/joe\x00\x00"},
	{"!joe-", "joe\x00507\x00100\x00/home/joe\x00-\x00"},
	{"!", "alias\x007790\x002108\x00/var/qmail/alias\x00-\x00"},
	{"!lists", "lists\x00601\x00601\x00/home/lists\x00-\x00pre"},
	{"!joe.shmoe\x00", "second\x001\x001\x00/x\x00-\x00e"},
	{"", "-s"},
}

// cdbmakeFormat renders records as cdbmake reads and cdbdump writes them.
func cdbmakeFormat(records [][2]string) string {
	var b strings.Builder
	for _, r := range records {
		fmt.Fprintf(&b, "+%d,%d:%s->%s\n", len(r[0]), len(r[1]), r[0], r[1])
	}
	return b.String() + "\n"
}

func TestNewU(t *testing.T) {
	t.Parallel()
	cdbdump, cdbget, cdbmake := testenv.Tool(t, "cdbdump", "freecdb"), testenv.Tool(t, "cdbget", "freecdb"), testenv.Tool(t, "cdbmake", "freecdb")
	home := testenv.NewHome(t, "qmail-newu")
	writeAssign(t, home, assign)
	if out, errout, code := testenv.Run(t, home, nil, filepath.Join(home, "bin", "qmail-newu")); code != 0 || out != "" || errout != "" {
		t.Fatalf("qmail-newu: exit %d, stdout %q, stderr %q", code, out, errout)
	}
	db := filepath.Join(home, "users", "cdb")
	wantDump := cdbmakeFormat(wantRecords)
	dump, _, code := testenv.Run(t, home, testenv.OpenFile(t, db), cdbdump)
	if code != 0 || dump != wantDump {
		t.Errorf("cdbdump exit %d:\n%q\nwant\n%q", code, dump, wantDump)
	}
	for key, want := range map[string]string{
		"!joe-":  "joe\x00507\x00100\x00/home/joe\x00-\x00",
		"!":      "alias\x007790\x002108\x00/var/qmail/alias\x00-\x00",
		"!lists": "lists\x00601\x00601\x00/home/lists\x00-\x00pre",
	} {
		if got, _, code := testenv.Run(t, home, testenv.OpenFile(t, db), cdbget, key); code != 0 || got != want {
			t.Errorf("cdbget %q = %q exit %d, want %q", key, got, code, want)
		}
	}
	// The same records through cdbmake give the same bytes.
	theirs := filepath.Join(t.TempDir(), "cdb")
	if _, errout, code := testenv.Run(t, home, strings.NewReader(wantDump), cdbmake, theirs, theirs+".tmp"); code != 0 {
		t.Fatalf("cdbmake: exit %d %s", code, errout)
	}
	ours, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(theirs); err != nil || !bytes.Equal(b, ours) {
		t.Errorf("users/cdb differs from cdbmake's file for the same records (%v)", err)
	}
	if st, err := os.Stat(db); err != nil || st.Mode().Perm()&0o022 != 0 {
		t.Errorf("users/cdb mode: %v %v", st.Mode(), err)
	}
}

func TestNewUFailures(t *testing.T) {
	t.Parallel()
	prog := testenv.Program(t, "qmail-newu")
	tests := []struct {
		name   string
		assign *string
		msg    string
	}{
		{"missing assign", nil, "qmail-newu: fatal: unable to open users/assign"},
		{"no terminator", ptr("=a:u:1:2:/h:::\n"), "qmail-newu: fatal: bad format in users/assign"},
		{"too few colons", ptr("=a:u:1:2:/h::\n.\n"), "qmail-newu: fatal: bad format in users/assign"},
		{"NUL", ptr("=a:u:1:2:/h:\x00::\n.\n"), "qmail-newu: fatal: bad format in users/assign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := testenv.NewHome(t)
			writeAssign(t, home, "=old:u:1:2:/h:::\n.\n")
			if _, errout, code := testenv.Run(t, home, nil, prog); code != 0 {
				t.Fatalf("first qmail-newu: exit %d %s", code, errout)
			}
			before, err := os.ReadFile(filepath.Join(home, "users", "cdb"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.assign == nil {
				os.Remove(filepath.Join(home, "users", "assign"))
			} else {
				writeAssign(t, home, *tt.assign)
			}
			_, errout, code := testenv.Run(t, home, nil, prog)
			if code != 111 || !strings.HasPrefix(errout, tt.msg) || !strings.HasSuffix(errout, "\n") {
				t.Errorf("exit %d, stderr %q; want 111 and %q", code, errout, tt.msg)
			}
			after, err := os.ReadFile(filepath.Join(home, "users", "cdb"))
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("users/cdb changed (%v)", err)
			}
			if _, err := os.Stat(filepath.Join(home, "users", "cdb.tmp")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("users/cdb.tmp left behind: %v", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// A users/cdb made by cdbmake from qmail-newu's records (what netqmail's
// qmail-newu writes) is read by our qmail-lspawn lookup.
func TestLookupReadsCdbmake(t *testing.T) {
	t.Parallel()
	cdbmake := testenv.Tool(t, "cdbmake", "freecdb")
	home := testenv.NewHome(t)
	db := filepath.Join(home, "users", "cdb")
	if _, errout, code := testenv.Run(t, home, strings.NewReader(cdbmakeFormat(wantRecords)), cdbmake, db, db+".tmp"); code != 0 {
		t.Fatalf("cdbmake: exit %d %s", code, errout)
	}
	tests := []struct {
		local string
		want  users.Entry
	}{
		{"Joe.Shmoe", users.Entry{User: "joe", UID: 503, GID: 78, Home: "/home/joe"}},
		{"joe-Box", users.Entry{User: "joe", UID: 507, GID: 100, Home: "/home/joe", Dash: "-", Ext: "Box"}},
		{"listsX", users.Entry{User: "lists", UID: 601, GID: 601, Home: "/home/lists", Dash: "-", Ext: "preX"}},
		{"Other", users.Entry{User: "alias", UID: 7790, GID: 2108, Home: "/var/qmail/alias", Dash: "-", Ext: "Other"}},
	}
	for _, tt := range tests {
		got, ok, err := users.LookupFile(home, tt.local)
		if err != nil || !ok || got != tt.want {
			t.Errorf("LookupFile(%q) = %+v, %v, %v; want %+v", tt.local, got, ok, err, tt.want)
		}
	}
}
