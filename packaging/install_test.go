package main

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// makeInstall runs the main module's make install with vars, using the
// programs this test process built. "-o build" keeps make from
// rebuilding them: other tests package the same files meanwhile.
func makeInstall(t *testing.T, vars ...string) string {
	t.Helper()
	bin, err := programs()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-C", "..", "--no-print-directory", "-o", "build", "install", "BIN=" + bin}, vars...)
	out, err := exec.Command("make", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func lookupUid(t *testing.T, name string) uint32 {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	return uint32(uid)
}

// TestMakeInstallPrivileged installs as root into a fresh home, checks
// qmail's owners and modes, then installs again over it the way an
// upgrade does: programs replaced, queue and control files kept.
func TestMakeInstallPrivileged(t *testing.T) {
	testenv.Root(t)
	testenv.Tool(t, "make", "make")
	t.Parallel()
	home := filepath.Join(t.TempDir(), "qmail")
	out := makeInstall(t, "QMAILHOME="+home, "ME=install.example")
	t.Log(out)

	qmailq := lookupUid(t, "qmailq")
	st := statOf(t, filepath.Join(home, "bin/qmail-queue"))
	if st.Mode&0o7777 != 0o4711 || st.Uid != qmailq {
		t.Errorf("qmail-queue: mode %o uid %d, want 4711 uid %d", st.Mode&0o7777, st.Uid, qmailq)
	}
	if st := statOf(t, filepath.Join(home, "bin/qmail-lspawn")); st.Mode&0o7777 != 0o700 || st.Uid != 0 {
		t.Errorf("qmail-lspawn: mode %o uid %d, want 700 root", st.Mode&0o7777, st.Uid)
	}
	if st := statOf(t, filepath.Join(home, "queue")); st.Uid != qmailq || st.Mode&0o7777 != 0o750 {
		t.Errorf("queue: mode %o uid %d", st.Mode&0o7777, st.Uid)
	}
	if st := statOf(t, filepath.Join(home, "alias")); st.Uid != lookupUid(t, "alias") {
		t.Errorf("alias/ owned by %d", st.Uid)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "control/me")); string(b) != "install.example\n" {
		t.Errorf("control/me: %q", b)
	}
	if _, err := os.Stat(filepath.Join(home, "man/man8/qmail-send.8")); err != nil {
		t.Errorf("man pages: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "doc/install.md")); err != nil {
		t.Errorf("docs: %v", err)
	}

	// Upgrade: a message in the queue and an edited control file survive.
	marker := filepath.Join(home, "queue/lock/marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "control/me"), []byte("edited.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := statOf(t, filepath.Join(home, "bin/qmail-send")).Ino
	out = makeInstall(t, "QMAILHOME="+home)
	if !strings.Contains(out, "upgraded") {
		t.Errorf("second install did not take the upgrade path:\n%s", out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("upgrade lost the queue: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "control/me")); string(b) != "edited.example\n" {
		t.Errorf("upgrade rewrote control/me: %q", b)
	}
	if statOf(t, filepath.Join(home, "bin/qmail-send")).Ino == before {
		t.Error("qmail-send was rewritten in place, not replaced by a rename")
	}
	st = statOf(t, filepath.Join(home, "bin/qmail-queue"))
	if st.Mode&0o7777 != 0o4711 || st.Uid != qmailq {
		t.Errorf("qmail-queue after upgrade: mode %o uid %d", st.Mode&0o7777, st.Uid)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(home, "bin/.*")); len(leftovers) != 0 {
		t.Errorf("temporary files left in bin: %v", leftovers)
	}
}

// TestMakeInstallDestdir stages an installation under DESTDIR, as a
// package build does, with the sendmail links.
func TestMakeInstallDestdir(t *testing.T) {
	testenv.Tool(t, "make", "make")
	t.Parallel()
	dest := t.TempDir()
	makeInstall(t, "DESTDIR="+dest, "QMAILHOME=/var/qmail", "SENDMAIL_LINKS=yes", "ME=staged.example")
	home := filepath.Join(dest, "var/qmail")
	fi, err := os.Lstat(filepath.Join(home, "bin/qmail-inject"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("bin/qmail-inject is %v, want a copy of the program", fi.Mode())
	}
	for _, link := range []string{"usr/sbin/sendmail", "usr/lib/sendmail"} {
		target, err := os.Readlink(filepath.Join(dest, link))
		if err != nil || target != "/var/qmail/bin/sendmail" {
			t.Errorf("%s -> %q, %v; want /var/qmail/bin/sendmail", link, target, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, "control/me")); string(b) != "staged.example\n" {
		t.Errorf("control/me: %q", b)
	}
	if _, err := os.Stat(filepath.Join(home, "queue/lock/trigger")); err != nil {
		t.Errorf("queue layout: %v", err)
	}
}

// TestInstallScriptUnprivileged runs scripts/install.sh as an ordinary
// user: everything belongs to that user, programs are copies.
func TestInstallScriptUnprivileged(t *testing.T) {
	testenv.Root(t) // to become another user
	setpriv := testenv.Tool(t, "setpriv", "util-linux")
	t.Parallel()
	bin, err := programs()
	if err != nil {
		t.Fatal(err)
	}
	nobody := lookupUid(t, "nobody")
	dir, err := os.MkdirTemp("", "goqmail-install-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{dir, bin} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, int(nobody), -1); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../scripts/install.sh")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "qmail")
	cmd := exec.Command(setpriv, "--reuid="+strconv.Itoa(int(nobody)), "--regid="+strconv.Itoa(int(nobody)),
		"--clear-groups", "sh", script, bin, home, "", "", "user.example")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh as nobody: %v\n%s", err, out)
	}
	for _, p := range []string{"bin/qmail-queue", "queue", "control/me"} {
		st := statOf(t, filepath.Join(home, p))
		if st.Uid != nobody {
			t.Errorf("%s owned by %d, want %d", p, st.Uid, nobody)
		}
		if st.Mode&0o7000 != 0 {
			t.Errorf("%s: mode %o has setuid/setgid bits in an unprivileged home", p, st.Mode&0o7777)
		}
	}
}
