package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

func TestNewMRH(t *testing.T) {
	t.Parallel()
	cdbget, cdbdump := testenv.Tool(t, "cdbget", "freecdb"), testenv.Tool(t, "cdbdump", "freecdb")
	home := testenv.NewHome(t, "qmail-newmrh")
	testenv.WriteControl(t, home, "morercpthosts", "Example.COM \t\n# comment\n\n.Sub.Example.Org\nlast.example")
	prog := filepath.Join(home, "bin", "qmail-newmrh")
	if out, errout, code := testenv.Run(t, home, nil, prog); code != 0 || out != "" || errout != "" {
		t.Fatalf("qmail-newmrh: exit %d, stdout %q, stderr %q", code, out, errout)
	}
	db := filepath.Join(home, "control", "morercpthosts.cdb")
	tests := []struct {
		key  string
		code int
	}{
		{"example.com", 0},
		{".sub.example.org", 0},
		{"last.example", 0},
		{"Example.COM", 100},
		{"# comment", 100},
		{"example.com ", 100},
	}
	for _, tt := range tests {
		out, errout, code := testenv.Run(t, home, testenv.OpenFile(t, db), cdbget, tt.key)
		if code != tt.code || out != "" {
			t.Errorf("cdbget %q: exit %d, output %q %s; want exit %d and no data", tt.key, code, out, errout, tt.code)
		}
	}
	want := "+11,0:example.com->\n+16,0:.sub.example.org->\n+12,0:last.example->\n\n"
	if out, _, code := testenv.Run(t, home, testenv.OpenFile(t, db), cdbdump); code != 0 || out != want {
		t.Errorf("cdbdump = %q exit %d, want %q", out, code, want)
	}
	if _, err := os.Stat(filepath.Join(home, "control", "morercpthosts.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("morercpthosts.tmp left behind: %v", err)
	}

	// Without the source file: exit 111, the cdb stays as it was.
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(home, "control", "morercpthosts"))
	_, errout, code := testenv.Run(t, home, nil, prog)
	if code != 111 || !strings.HasPrefix(errout, "qmail-newmrh: fatal: unable to read control/morercpthosts: ") {
		t.Errorf("without morercpthosts: exit %d, stderr %q", code, errout)
	}
	if after, err := os.ReadFile(db); err != nil || !bytes.Equal(before, after) {
		t.Errorf("morercpthosts.cdb changed (%v)", err)
	}
}
