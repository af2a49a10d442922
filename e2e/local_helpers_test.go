package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsend"
)

// nobody is the account an unprivileged home runs as when the tests run
// as root: qmail-lspawn refuses to deliver as root.
const nobody = testsend.Nobody

// localPrograms are the programs of a mail system that takes mail from
// sendmail and delivers it locally.
var localPrograms = []string{
	"sendmail", "qmail-inject", "qmail-queue", "qmail-start", "qmail-send",
	"qmail-lspawn", "qmail-rspawn", "qmail-clean", "qmail-local", "qmail-newu",
}

// mailSystem is an unprivileged qmail home with local users listed in
// users/assign, each with a home directory of its own.
type mailSystem struct {
	t    *testing.T
	home string
	// attr runs a program as the account owning the home (nil: the
	// caller, when the tests do not run as root).
	attr     *syscall.SysProcAttr
	uid, gid int
	users    map[string]string // user name → home directory
}

// newMailSystem makes a home whose local users are names (each also
// owning every name-ext address), with a QMAILREMOTE that accepts every
// message and keeps it in remote-out/, so that no test touches the
// network.
func newMailSystem(t *testing.T, names ...string) *mailSystem {
	t.Helper()
	sys := &mailSystem{t: t, home: testenv.NewHome(t, localPrograms...), uid: os.Getuid(), gid: os.Getgid(),
		users: map[string]string{}}
	if sys.uid == 0 {
		sys.uid, sys.gid = nobody, nobody
		sys.attr = testsend.NobodyAttr()
	}
	testsend.WriteFakeRemote(t, sys.home, "192.0.2.1")

	people := t.TempDir()
	var assign strings.Builder
	for _, name := range names {
		dir := filepath.Join(people, name)
		mkdirs(t, 0o755, dir)
		sys.users[name] = dir
		fmt.Fprintf(&assign, "=%s:%s:%d:%d:%s:::\n", name, name, sys.uid, sys.gid, dir)
		fmt.Fprintf(&assign, "+%s-:%s:%d:%d:%s:-::\n", name, name, sys.uid, sys.gid, dir)
	}
	assign.WriteString(".\n")
	writeMode(t, filepath.Join(sys.home, "users", "assign"), assign.String(), 0o644)
	if sys.attr != nil {
		for _, dir := range []string{sys.home, people} {
			testsend.ChownTree(t, dir, sys.uid, sys.gid)
			// The account must reach the directories through their parents.
			if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(filepath.Dir(testenv.Program(t, "qmail-send")), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := sys.command("qmail-newu").CombinedOutput(); err != nil {
		t.Fatalf("qmail-newu: %v\n%s", err, out)
	}
	return sys
}

// command prepares a program of the home's bin/ to run as the home's
// account with the home's environment.
func (sys *mailSystem) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(sys.home, "bin", name), args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "QMAILHOME=" + sys.home,
		"QMAILREMOTE=" + filepath.Join(sys.home, "bin", "fake-remote"), "USER=alice"}
	cmd.SysProcAttr = sys.attr
	return cmd
}

// write creates a file owned by the home's account in a user's home (or
// in the home of the qmail home's alias account, user "alias").
func (sys *mailSystem) write(user, name, content string, mode os.FileMode) string {
	sys.t.Helper()
	dir := sys.users[user]
	if user == "alias" {
		dir = filepath.Join(sys.home, "alias")
	}
	p := filepath.Join(dir, name)
	writeMode(sys.t, p, content, mode)
	if err := os.Lchown(p, sys.uid, sys.gid); err != nil {
		sys.t.Fatal(err)
	}
	return p
}

// maildir makes dir/name a maildir owned by the home's account.
func (sys *mailSystem) maildir(user, name string) string {
	sys.t.Helper()
	dir := sys.users[user]
	if user == "alias" {
		dir = filepath.Join(sys.home, "alias")
	}
	box := filepath.Join(dir, name)
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		p := filepath.Join(box, sub)
		mkdirs(sys.t, 0o700, p)
		if err := os.Lchown(p, sys.uid, sys.gid); err != nil {
			sys.t.Fatal(err)
		}
	}
	return box
}

// sendmail submits msg with "sendmail args...", as a user would.
func (sys *mailSystem) sendmail(msg string, args ...string) {
	sys.t.Helper()
	cmd := sys.command("sendmail", args...)
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		sys.t.Fatalf("sendmail %q: %v\n%s", args, err, out)
	}
}

// enqueue gives qmail-queue a message and its envelope directly: a
// quicker way to fill the queue than sendmail.
func (sys *mailSystem) enqueue(msg, sender string, recips ...string) {
	sys.t.Helper()
	testsend.Enqueue(sys.t, sys.command("qmail-queue"), msg, sender, recips...)
}

// start runs "qmail-start ./Maildir/", which becomes qmail-send logging
// to our pipe. resumed says the queue already holds messages logged by
// an earlier run.
func (sys *mailSystem) start(resumed bool) *testsend.Manager {
	sys.t.Helper()
	return testsend.Start(sys.t, sys.command("qmail-start", "./Maildir/"), resumed)
}

func mkdirs(t *testing.T, mode os.FileMode, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// writeMode writes a file with exactly mode, whatever the umask.
func writeMode(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
