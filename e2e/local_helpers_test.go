package e2e_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
	"github.com/goqmail/goqmail/send/sendlog"
)

// localWaitLimit bounds every wait for the queue manager; it is a deadline
// for a hang, not a timing assertion.
const localWaitLimit = 60 * time.Second

// nobody is the account an unprivileged home runs as when the tests run
// as root: qmail-lspawn refuses to deliver as root.
const nobody = 65534

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
		sys.attr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	}
	mkdirs(t, 0o755, filepath.Join(sys.home, "remote-out"))
	writeMode(t, filepath.Join(sys.home, "bin", "fake-remote"), "#!/bin/sh\n"+
		"f=$(mktemp \"$QMAILHOME/remote-out/msg.XXXXXX\") || exit 111\n"+
		"{ printf '%s\\n' \"$1\" \"$2\" \"$3\"; cat; } >\"$f\" || exit 111\n"+
		"printf 'r\\0K192.0.2.1 accepted message./Remote host said: 250 ok\\n\\0'\n", 0o755)

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
			chownTree(t, dir, sys.uid, sys.gid)
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
	envR, envW, err := os.Pipe()
	if err != nil {
		sys.t.Fatal(err)
	}
	defer envR.Close()
	cmd := sys.command("qmail-queue")
	cmd.Stdin = strings.NewReader(msg)
	cmd.Stdout = envR
	if err := cmd.Start(); err != nil {
		envW.Close()
		sys.t.Fatal(err)
	}
	envR.Close()
	_, werr := io.WriteString(envW, queue.EncodeEnvelope(sender, recips))
	envW.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		sys.t.Fatalf("qmail-queue: %v, writing the envelope: %v", err, werr)
	}
}

// start runs "qmail-start ./Maildir/", which becomes qmail-send logging
// to our pipe. resumed says the queue already holds messages logged by
// an earlier run.
func (sys *mailSystem) start(resumed bool) *queueManager {
	sys.t.Helper()
	return startManager(sys.t, sys.command("qmail-start", "./Maildir/"), resumed)
}

// queueManager is a running qmail-send and the lines of its log.
type queueManager struct {
	t       *testing.T
	cmd     *exec.Cmd
	resumed bool
	mu      sync.Mutex
	changed *sync.Cond
	log     []string
	eof     bool
}

// startManager starts cmd, which must become qmail-send with its log on
// cmd's stdout.
func startManager(t *testing.T, cmd *exec.Cmd, resumed bool) *queueManager {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &queueManager{t: t, cmd: cmd, resumed: resumed}
	m.changed = sync.NewCond(&m.mu)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m.mu.Lock()
			m.log = append(m.log, sc.Text())
			m.mu.Unlock()
			m.changed.Broadcast()
		}
		m.mu.Lock()
		m.eof = true
		m.mu.Unlock()
		m.changed.Broadcast()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return m
}

// waitFor waits until n log lines match re, and returns the matches of
// re's groups in each.
func (m *queueManager) waitFor(re string, n int) [][]string {
	m.t.Helper()
	rx := regexp.MustCompile(re)
	expired := false
	timer := time.AfterFunc(localWaitLimit, func() {
		m.mu.Lock()
		expired = true
		m.mu.Unlock()
		m.changed.Broadcast()
	})
	defer timer.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		var hits [][]string
		for _, l := range m.log {
			if sub := rx.FindStringSubmatch(l); sub != nil {
				hits = append(hits, sub)
			}
		}
		if len(hits) >= n {
			return hits
		}
		if m.eof || expired {
			m.t.Fatalf("log has %d of %d lines matching %q:\n%s", len(hits), n, re, strings.Join(m.log, "\n"))
		}
		m.changed.Wait()
	}
}

// lines is the log so far.
func (m *queueManager) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.log...)
}

func (m *queueManager) signal(sig os.Signal) {
	m.t.Helper()
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatalf("signalling qmail-send: %v", err)
	}
}

// waitSignalTaken waits until sig is no longer pending for qmail-send,
// that is until the kernel has delivered it to the Go runtime.
func (m *queueManager) waitSignalTaken(sig syscall.Signal) {
	m.t.Helper()
	status := fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid)
	deadline := time.Now().Add(localWaitLimit)
	for {
		b, err := os.ReadFile(status)
		if err != nil {
			m.t.Fatalf("reading qmail-send's pending signals: %v", err)
		}
		_, rest, ok := strings.Cut(string(b), "\nShdPnd:\t")
		hex, _, _ := strings.Cut(rest, "\n")
		pending, err := strconv.ParseUint(hex, 16, 64)
		if !ok || err != nil {
			m.t.Fatalf("%s: no ShdPnd line", status)
		}
		if pending&(1<<(uint(sig)-1)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("signal %v still pending for qmail-send", sig)
		}
		time.Sleep(time.Millisecond)
	}
}

// stop sends TERM, waits for qmail-send to exit 0, and checks the whole
// log against qmail-log(5).
func (m *queueManager) stop() {
	m.t.Helper()
	m.signal(syscall.SIGTERM)
	m.waitFor(`^status: exiting$`, 1)
	if err := m.cmd.Wait(); err != nil {
		m.t.Fatalf("qmail-send: %v", err)
	}
	m.check(false)
}

// kill is a crash: SIGKILL, then the log up to it.
func (m *queueManager) kill() []string {
	m.t.Helper()
	m.signal(syscall.SIGKILL)
	m.cmd.Wait()
	m.mu.Lock()
	for !m.eof {
		m.changed.Wait()
	}
	m.mu.Unlock()
	m.check(true)
	return m.lines()
}

func (m *queueManager) check(truncated bool) {
	m.t.Helper()
	problems := sendlog.Check(m.lines(), sendlog.Options{Truncated: truncated, Resumed: m.resumed})
	for _, p := range problems {
		m.t.Errorf("qmail-log(5): %s", p)
	}
	if len(problems) > 0 {
		m.t.Logf("the log:\n%s", strings.Join(m.lines(), "\n"))
	}
}

// delivered reads the messages in a maildir's new/.
func delivered(t *testing.T, box string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(box, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(box, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// waitDelivered waits until a maildir holds n messages and returns them.
func waitDelivered(t *testing.T, box string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(localWaitLimit)
	for {
		got := delivered(t, box)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d of %d messages", box, len(got), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueIsEmpty fails if a message is left anywhere in the queue.
func queueIsEmpty(t *testing.T, home string) {
	t.Helper()
	for _, dir := range []string{"mess", "info", "local", "remote", "todo", "intd", "bounce"} {
		err := filepath.WalkDir(filepath.Join(home, "queue", dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				t.Errorf("left in the queue: %s", p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
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

func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}
