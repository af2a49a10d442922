package control

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/goqmail/goqmail/control/cdb"
)

func dumpKeys(t *testing.T, path string) []string {
	t.Helper()
	db, err := cdb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys []string
	if err := db.ForEach(func(k, v []byte) bool {
		if len(v) != 0 {
			t.Errorf("key %q has data %q", k, v)
		}
		keys = append(keys, string(k))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestNewMRH(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Example.COM\n", []string{"example.com"}},
		{"a.example \t\n\n# comment\n  b.example\nc.example", []string{"a.example", "  b.example", "c.example"}},
		{"dup.example\nDUP.example\n", []string{"dup.example", "dup.example"}},
		{"\xc3\x89T\xff.example\n", []string{"\xc3\x89t\xff.example"}}, // only A-Z are lowered
	}
	for _, tt := range tests {
		home := newHome(t, map[string]string{"morercpthosts": tt.in})
		if err := NewMRH(home); err != nil {
			t.Fatalf("NewMRH(%q): %v", tt.in, err)
		}
		got := dumpKeys(t, filepath.Join(home, "control", "morercpthosts.cdb"))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("NewMRH(%q) keys = %q, want %q", tt.in, got, tt.want)
		}
		if _, err := os.Stat(filepath.Join(home, "control", "morercpthosts.tmp")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("morercpthosts.tmp left behind: %v", err)
		}
	}
}

func TestNewMRHMissing(t *testing.T) {
	home := newHome(t, nil)
	if err := NewMRH(home); err == nil {
		t.Fatal("NewMRH without control/morercpthosts succeeded")
	}
	if _, err := os.Stat(filepath.Join(home, "control", "morercpthosts.cdb")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cdb was written: %v", err)
	}
}
