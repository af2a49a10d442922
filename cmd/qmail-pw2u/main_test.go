package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

func writeFile(t *testing.T, path, content string) *os.File {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return testenv.OpenFile(t, path)
}

// From a password file to users/cdb: qmail-pw2u's output goes through
// qmail-newu and is checked with freecdb's cdbget.
func TestPW2UToNewU(t *testing.T) {
	t.Parallel()
	cdbget := testenv.Tool(t, "cdbget", "freecdb")
	home := testenv.NewHome(t, "qmail-pw2u", "qmail-newu")
	tmp := t.TempDir()

	// Home directories owned by the account's uid: our own, or as root
	// a non-zero uid (qmail-pw2u never assigns uid 0).
	uid := os.Getuid()
	mkhome := func(name string) string {
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if os.Getuid() == 0 {
			if err := os.Chown(dir, 4321, 4321); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	if uid == 0 {
		uid = 4321
	}
	aliasHome, joeHome := mkhome("alias"), mkhome("joe")
	passwd := fmt.Sprintf("root:x:0:0::/root:/bin/sh\nalias:x:%d:%d::%s:/bin/true\njoe:x:%d:%d::%s:/bin/sh\nghost:x:%d:%d::%s:/bin/sh\n",
		uid, uid, aliasHome, uid, uid, joeHome, uid, uid, filepath.Join(tmp, "missing"))
	in := writeFile(t, filepath.Join(tmp, "passwd"), passwd)

	out, errout, code := testenv.Run(t, home, in, filepath.Join(home, "bin", "qmail-pw2u"))
	if code != 0 || errout != "" {
		t.Fatalf("qmail-pw2u: exit %d, stderr %q", code, errout)
	}
	uugh := func(user, dir string) string { return fmt.Sprintf(":%s:%d:%d:%s:", user, uid, uid, dir) }
	want := "+" + uugh("alias", aliasHome) + "-::\n" +
		"=alias" + uugh("alias", aliasHome) + "::\n" + "+alias-" + uugh("alias", aliasHome) + "-::\n" +
		"=joe" + uugh("joe", joeHome) + "::\n" + "+joe-" + uugh("joe", joeHome) + "-::\n.\n"
	if out != want {
		t.Fatalf("qmail-pw2u output:\n%s\nwant:\n%s", out, want)
	}

	writeFile(t, filepath.Join(home, "users", "assign"), out)
	if _, errout, code := testenv.Run(t, home, nil, filepath.Join(home, "bin", "qmail-newu")); code != 0 {
		t.Fatalf("qmail-newu: exit %d %s", code, errout)
	}
	db, err := os.Open(filepath.Join(home, "users", "cdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for key, value := range map[string]string{
		"!":       fmt.Sprintf("alias\x00%d\x00%d\x00%s\x00-\x00", uid, uid, aliasHome),
		"!joe-":   fmt.Sprintf("joe\x00%d\x00%d\x00%s\x00-\x00", uid, uid, joeHome),
		"!alias-": fmt.Sprintf("alias\x00%d\x00%d\x00%s\x00-\x00", uid, uid, aliasHome),
	} {
		if _, err := db.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		if got, _, code := testenv.Run(t, home, db, cdbget, key); code != 0 || got != value {
			t.Errorf("cdbget %q = %q exit %d, want %q", key, got, code, value)
		}
	}
}

func TestPW2UFailures(t *testing.T) {
	t.Parallel()
	prog := testenv.Program(t, "qmail-pw2u")
	home := testenv.NewHome(t)
	in := writeFile(t, filepath.Join(t.TempDir(), "passwd"), "joe:x:5:5::/nonexistent:/bin/sh\n")
	if _, _, code := testenv.Run(t, home, in, prog, "-x"); code != 100 {
		t.Errorf("bad option: exit %d, want 100", code)
	}
	out, errout, code := testenv.Run(t, home, in, prog, "-H")
	if code != 111 || errout != "qmail-pw2u: fatal: unable to find alias user\n" || strings.Contains(out, ".\n") {
		t.Errorf("no alias: exit %d, stderr %q, stdout %q", code, errout, out)
	}
}
