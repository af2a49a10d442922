package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// programs returns a directory of built goqmail programs: $GOQMAIL_BIN
// (make sets it), else a fresh build of the main module's commands.
var programs = sync.OnceValues(func() (string, error) {
	if dir := os.Getenv("GOQMAIL_BIN"); dir != "" {
		return filepath.Abs(dir)
	}
	dir, err := os.MkdirTemp("", "goqmail-deb-bin-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "./cmd/...")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the programs: %v\n%s", err, out)
	}
	return dir, nil
})

// testDeb is the package built from programs, once per test process
// (writing 100 MB of compressed programs is the slow part of these tests).
var testDeb = sync.OnceValues(func() (string, error) {
	bin, err := programs()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "goqmail-deb-")
	if err != nil {
		return "", err
	}
	return buildDeb(options{
		Config: "nfpm.yaml", Bin: bin, Man: "../docs/man", Doc: "../docs",
		Version: "0.1.0", Arch: runtime.GOARCH, Out: dir,
	})
})

func buildTestDeb(t *testing.T) string {
	t.Helper()
	deb, err := testDeb()
	if err != nil {
		t.Fatal(err)
	}
	return deb
}

// TestPackageMetadata reads the built package back with dpkg-deb, the
// tool dpkg itself uses, and checks what makes it a goqmail MTA package.
func TestPackageMetadata(t *testing.T) {
	dpkgDeb := testenv.Tool(t, "dpkg-deb", "dpkg")
	t.Parallel()
	deb := buildTestDeb(t)
	field := func(name string) string {
		out, err := exec.Command(dpkgDeb, "--field", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	checks := []struct{ field, want string }{
		{"Package", "goqmail"},
		{"Version", "0.1.0"},
		{"Provides", "mail-transport-agent"},
		{"Conflicts", "mail-transport-agent, qmail, netqmail, qmail-run"},
		{"Replaces", "mail-transport-agent, qmail, netqmail, qmail-run"},
		{"Recommends", "ucspi-tcp"},
	}
	for _, c := range checks {
		if got := field(c.field); got != c.want {
			t.Errorf("%s: got %q, want %q", c.field, got, c.want)
		}
	}

	conffiles := controlFile(t, dpkgDeb, deb, "conffiles")
	for _, want := range []string{"/var/qmail/control/defaultdelivery", "/etc/tcp.smtp",
		"/etc/sv/qmail-send/run", "/etc/sv/qmail-send/log/run", "/etc/sv/qmail-smtpd/run",
		"/var/qmail/supervise/qmail-send/run", "/var/qmail/supervise/qmail-smtpd/log/run"} {
		if !strings.Contains("\n"+conffiles, "\n"+want+"\n") {
			t.Errorf("conffiles lacks %s:\n%s", want, conffiles)
		}
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		if controlFile(t, dpkgDeb, deb, script) == "" {
			t.Errorf("no %s", script)
		}
	}

	listing, err := exec.Command(dpkgDeb, "--contents", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --contents: %v", err)
	}
	modes := map[string]string{} // path -> ls-style mode and owner
	sc := bufio.NewScanner(bytes.NewReader(listing))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 6 {
			modes[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
		}
	}
	wantModes := map[string]string{
		"/var/qmail/bin/qmail-queue":          "-rwx--x--x root/root",
		"/var/qmail/bin/qmail-lspawn":         "-rwx------ root/root",
		"/var/qmail/bin/qmail-start":          "-rwx------ root/root",
		"/var/qmail/bin/qmail-inject":         "-rwxr-xr-x root/root",
		"/var/qmail/bin/qmailctl":             "-rwxr-xr-x root/root",
		"/usr/sbin/sendmail":                  "lrwxrwxrwx root/root",
		"/usr/share/man/man8/qmail-send.8.gz": "-rw-r--r-- root/root",
	}
	for p, want := range wantModes {
		got, ok := modes[p]
		if !ok {
			t.Errorf("%s not in the package", p)
			continue
		}
		// dpkg-deb shows symbolic links with the mode stored in the tar.
		if strings.HasPrefix(want, "l") {
			got, want = got[:1], want[:1]
		}
		if got != want {
			t.Errorf("%s: %s, want %s", p, got, want)
		}
	}
}

func controlFile(t *testing.T, dpkgDeb, deb, name string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command(dpkgDeb, "--control", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuildDebRefusesIncompleteBin(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "qmail-queue"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := buildDeb(options{Config: "nfpm.yaml", Bin: bin, Version: "1.0", Arch: "amd64", Out: filepath.Join(t.TempDir(), "x.deb")})
	if err == nil || !strings.Contains(err.Error(), "qmailctl") {
		t.Fatalf("got %v, want an error naming the missing programs", err)
	}
	for _, bad := range []string{"", "-1", ".5"} {
		if _, err := buildDeb(options{Config: "nfpm.yaml", Bin: bin, Version: bad}); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
}

// debianRoot gives a clean Debian system (debootstrap --variant=minbase)
// in a temporary directory. The bootstrap is made once and kept as a tar
// file in $GOQMAIL_DEBROOT_CACHE (default: the user's cache directory),
// so later runs only unpack it.
func debianRoot(t *testing.T) string {
	t.Helper()
	testenv.Tool(t, "tar", "tar")
	suite := hostSuite()
	cacheDir := os.Getenv("GOQMAIL_DEBROOT_CACHE")
	if cacheDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cacheDir = filepath.Join(d, "goqmail")
	}
	cache := filepath.Join(cacheDir, "debootstrap-"+suite+"-minbase.tar")
	if _, err := os.Stat(cache); err != nil {
		debootstrap := testenv.Tool(t, "debootstrap", "debootstrap")
		build := filepath.Join(t.TempDir(), "root")
		out, err := exec.Command(debootstrap, "--variant=minbase", suite, build).CombinedOutput()
		if err != nil {
			t.Fatalf("debootstrap %s: %v\n%s", suite, err, tail(out))
		}
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := cache + ".tmp"
		if out, err := exec.Command("tar", "-C", build, "--numeric-owner", "-cf", tmp, ".").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, cache); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-C", root, "--numeric-owner", "-xf", cache).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", cache, err, out)
	}
	return root
}

// hostSuite is the Debian release to bootstrap: the host's when the host
// is Debian (debootstrap's default mirror is Debian's), else bookworm.
func hostSuite() string {
	b, _ := os.ReadFile("/etc/os-release")
	id, codename := "", ""
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "ID":
			id = v
		case "VERSION_CODENAME":
			codename = v
		}
	}
	if id == "debian" && codename != "" {
		return codename
	}
	return "bookworm"
}

func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}

// inChroot runs a shell script as root inside root, in private mount,
// pid and uts namespaces: /proc is mounted for it alone, every process
// the script leaves running (qmail-send and its children) dies with it,
// and it may set a host name of its own.
func inChroot(t *testing.T, root, script string) (string, error) {
	t.Helper()
	return runInChroot(t, root, script, "unshare", "--mount", "--pid", "--uts", "--fork",
		"--mount-proc="+filepath.Join(root, "proc"), "chroot", root, "/bin/sh", "-e", "/tmp/scenario.sh")
}

// inChrootNet is inChroot with a network namespace of its own as well,
// whose loopback interface is up: servers in it may listen on their
// usual ports without touching the host's. The script runs under bash
// (for /dev/tcp).
func inChrootNet(t *testing.T, root, script string) (string, error) {
	t.Helper()
	ip := testenv.Tool(t, "ip", "iproute2")
	return runInChroot(t, root, script, "unshare", "--mount", "--pid", "--uts", "--net", "--fork",
		"--mount-proc="+filepath.Join(root, "proc"),
		"/bin/sh", "-c", `"$1" link set lo up && exec chroot "$2" /bin/bash -e /tmp/scenario.sh`, "sh", ip, root)
}

func runInChroot(t *testing.T, root, script string, argv ...string) (string, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "tmp", "scenario.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDebInChroot installs the package with dpkg -i into a clean Debian
// root, starts qmail-send the way the service does, delivers a message
// through sendmail, qmail-queue, qmail-send, qmail-lspawn and qmail-local
// into a Maildir, then upgrades (conffiles and queue kept) and purges.
func TestDebInChroot(t *testing.T) {
	testenv.Root(t)
	testenv.Tool(t, "unshare", "util-linux")
	testenv.Tool(t, "chroot", "coreutils")
	t.Parallel()
	root := debianRoot(t)
	deb := buildTestDeb(t)
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/goqmail.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := inChroot(t, root, `
hostname mail.goqmail.test
echo '127.0.1.1 mail.goqmail.test mail' >>/etc/hosts
dpkg -i /tmp/goqmail.deb
useradd --create-home alice
/var/qmail/bin/maildirmake /home/alice/Maildir
chown -R alice: /home/alice/Maildir
/etc/sv/qmail-send/run >/tmp/qmail-send.log 2>&1 &
printf 'To: alice\nSubject: through the deb\n\nhello from the chroot\n' | /usr/sbin/sendmail -t
i=0
until [ -n "$(ls /home/alice/Maildir/new)" ]; do
	i=$((i + 1))
	if [ $i -gt 600 ]; then
		echo "no delivery; qmail-send's log:"; cat /tmp/qmail-send.log
		echo "queue:"; find /var/qmail/queue -type f
		exit 1
	fi
	sleep 0.1
done
echo delivered
# What qmailctl init gives a root-owned home, for comparison.
/var/qmail/bin/qmailctl init --home /tmp/reference --me reference.example --programs /var/qmail/bin
`)
	if err != nil {
		t.Fatalf("install and delivery in the chroot: %v\n%s", err, out)
	}
	t.Logf("install:\n%s", out)

	if me, err := os.ReadFile(filepath.Join(root, "var/qmail/control/me")); string(me) != "mail.goqmail.test\n" {
		t.Errorf("control/me: %q, %v; want the host's name", me, err)
	}
	users := passwd(t, root)
	for _, name := range []string{"alias", "qmaild", "qmaill", "qmailp", "qmailq", "qmailr", "qmails"} {
		if _, ok := users[name]; !ok {
			t.Errorf("postinst did not create user %s", name)
		}
	}
	queueStat := statOf(t, filepath.Join(root, "var/qmail/bin/qmail-queue"))
	if queueStat.Mode&0o7777 != 0o4711 || int(queueStat.Uid) != users["qmailq"] {
		t.Errorf("qmail-queue: mode %o uid %d, want 4711 uid %d (qmailq)", queueStat.Mode&0o7777, queueStat.Uid, users["qmailq"])
	}
	// The package's modes must be those qmailctl init gives (hier.c's).
	refBin := filepath.Join(root, "tmp/reference/bin")
	entries, err := os.ReadDir(refBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		want := statOf(t, filepath.Join(refBin, e.Name()))
		got := statOf(t, filepath.Join(root, "var/qmail/bin", e.Name()))
		if got.Mode&0o7777 != want.Mode&0o7777 || got.Uid != want.Uid {
			t.Errorf("%s: installed mode %o uid %d, qmailctl init gives %o uid %d",
				e.Name(), got.Mode&0o7777, got.Uid, want.Mode&0o7777, want.Uid)
		}
	}
	qdir := statOf(t, filepath.Join(root, "var/qmail/queue"))
	if int(qdir.Uid) != users["qmailq"] || qdir.Mode&0o7777 != 0o750 {
		t.Errorf("queue: uid %d mode %o, want qmailq 750", qdir.Uid, qdir.Mode&0o7777)
	}
	msgs, _ := filepath.Glob(filepath.Join(root, "home/alice/Maildir/new/*"))
	if len(msgs) != 1 {
		t.Fatalf("%d messages in alice's Maildir, want 1", len(msgs))
	}
	msg, err := os.ReadFile(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Delivered-To: alice@mail.goqmail.test\n", "Subject: through the deb", "\nhello from the chroot\n"} {
		if !bytes.Contains(msg, []byte(want)) {
			t.Errorf("delivered message lacks %q:\n%s", want, msg)
		}
	}

	// Upgrade (dpkg runs the same maintainer scripts for a reinstall of
	// the same version): the admin's conffile edit and host control files
	// stay, the queue stays, qmail-queue is setuid qmailq again.
	out, err = inChroot(t, root, `
echo './Mailbox' >/var/qmail/control/defaultdelivery
echo 'edited.example' >/var/qmail/control/me
touch /var/qmail/queue/lock/marker
dpkg -i --force-confold /tmp/goqmail.deb
dpkg-query --showformat='${Status}\n' --show goqmail
`)
	if err != nil {
		t.Fatalf("upgrade: %v\n%s", err, out)
	}
	if !strings.HasSuffix(strings.TrimSpace(out), "install ok installed") {
		t.Errorf("after the upgrade dpkg says:\n%s", out)
	}
	for file, want := range map[string]string{
		"var/qmail/control/defaultdelivery": "./Mailbox\n",
		"var/qmail/control/me":              "edited.example\n",
	} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil || string(b) != want {
			t.Errorf("%s after upgrade: %q, %v; want %q", file, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "var/qmail/queue/lock/marker")); err != nil {
		t.Errorf("upgrade replaced the queue: %v", err)
	}
	queueStat = statOf(t, filepath.Join(root, "var/qmail/bin/qmail-queue"))
	if queueStat.Mode&0o7777 != 0o4711 || int(queueStat.Uid) != users["qmailq"] {
		t.Errorf("qmail-queue after upgrade: mode %o uid %d", queueStat.Mode&0o7777, queueStat.Uid)
	}

	// Purge: programs, queue and statoverride go; the users stay.
	out, err = inChroot(t, root, `
dpkg --purge goqmail
dpkg-statoverride --list /var/qmail/bin/qmail-queue && exit 1
exit 0
`)
	if err != nil {
		t.Fatalf("purge: %v\n%s", err, out)
	}
	for _, gone := range []string{"var/qmail/bin/qmail-queue", "var/qmail/queue", "usr/sbin/sendmail", "var/qmail/control/me"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("/%s is still there after purge", gone)
		}
	}
	if _, ok := passwd(t, root)["qmailq"]; !ok {
		t.Error("purge removed the qmail users")
	}
}

func statOf(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// passwd reads the chroot's user names and uids.
func passwd(t *testing.T, root string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if uid, err := strconv.Atoi(f[2]); err == nil {
			users[f[0]] = uid
		}
	}
	return users
}
