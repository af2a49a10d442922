package admin

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestInitHomeUnprivileged(t *testing.T) {
	home := filepath.Join(t.TempDir(), "qmail")
	progs := t.TempDir()
	for _, p := range []string{"qmail-queue", "qmail-inject"} {
		if err := os.WriteFile(filepath.Join(progs, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := InitHome(InitOptions{Home: home, Me: "mx.example.org", Programs: progs}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"me", "locals", "rcpthosts"} {
		b, err := os.ReadFile(filepath.Join(home, "control", c))
		if err != nil || string(b) != "mx.example.org\n" {
			t.Errorf("control/%s = %q, %v", c, b, err)
		}
	}
	modes := map[string]os.FileMode{
		"alias":              os.ModeDir | os.ModeSetgid | 0o755,
		"bin":                os.ModeDir | 0o755,
		"queue":              os.ModeDir | 0o750,
		"queue/pid":          os.ModeDir | 0o700,
		"queue/mess/0":       os.ModeDir | 0o750,
		"queue/info/22":      os.ModeDir | 0o700,
		"queue/lock/tcpto":   0o644,
		"queue/lock/trigger": os.ModeNamedPipe | 0o622,
	}
	for p, want := range modes {
		fi, err := os.Lstat(filepath.Join(home, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "queue/mess/23")); err == nil {
		t.Error("queue/mess/23 exists: split must be 23 (0..22)")
	}
	target, err := os.Readlink(filepath.Join(home, "bin", "qmail-queue"))
	if err != nil || target != filepath.Join(progs, "qmail-queue") {
		t.Errorf("bin/qmail-queue -> %q, %v", target, err)
	}
}

func TestInitHomeRefusesExistingQueue(t *testing.T) {
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "queue"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := InitHome(InitOptions{Home: home, Me: "x.example"})
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("InitHome over an existing queue: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "control")); err == nil {
		t.Error("control/ was created although the queue existed")
	}
}

func TestInitHomeKeepsControlFiles(t *testing.T) {
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, "control"), 0o755)
	os.WriteFile(filepath.Join(home, "control", "me"), []byte("kept.example\n"), 0o644)
	if err := InitHome(InitOptions{Home: home, Me: "new.example"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "control", "me")); string(b) != "kept.example\n" {
		t.Errorf("control/me overwritten: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "control", "locals")); string(b) != "new.example\n" {
		t.Errorf("control/locals = %q", b)
	}
}

// TestInitHomePrivileged checks qmail's owners and modes. It needs root
// and the qmail users, which .ci/run creates.
func TestInitHomePrivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ids, err := LookupIds()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must create the qmail users: %v", err)
		}
		t.Skip(err)
	}
	home := filepath.Join(t.TempDir(), "qmail")
	progs := t.TempDir()
	for _, p := range []string{"qmail-queue", "qmail-inject"} {
		os.WriteFile(filepath.Join(progs, p), []byte("#!/bin/sh\n"), 0o755)
	}
	if err := InitHome(InitOptions{Home: home, Me: "x.example", Programs: progs, Ids: ids}); err != nil {
		t.Fatal(err)
	}
	owners := []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{"alias", ids.Alias, ids.Qmail, os.ModeDir | os.ModeSetgid | 0o755},
		{"queue", ids.Qmailq, ids.Qmail, os.ModeDir | 0o750},
		{"queue/mess/7", ids.Qmailq, ids.Qmail, os.ModeDir | 0o750},
		{"queue/info/7", ids.Qmails, ids.Qmail, os.ModeDir | 0o700},
		{"queue/bounce", ids.Qmails, ids.Qmail, os.ModeDir | 0o700},
		{"queue/lock/tcpto", ids.Qmailr, ids.Qmail, 0o644},
		{"queue/lock/trigger", ids.Qmails, ids.Qmail, os.ModeNamedPipe | 0o622},
		{"bin/qmail-queue", ids.Qmailq, ids.Qmail, os.ModeSetuid | 0o711},
		{"bin/qmail-inject", 0, ids.Qmail, 0o755},
	}
	for _, o := range owners {
		fi, err := os.Lstat(filepath.Join(home, o.path))
		if err != nil {
			t.Errorf("%s: %v", o.path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != o.uid || int(st.Gid) != o.gid || fi.Mode() != o.mode {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", o.path, st.Uid, st.Gid, fi.Mode(), o.uid, o.gid, o.mode)
		}
	}
}
