// Package testsend runs the queue manager for tests: a qmail-send
// started through qmail-start with its log read line by line, and the
// homes, queues and maildirs around it.
package testsend

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

// WaitLimit bounds every wait for qmail-send; it is a deadline for a
// hang, not a timing assertion.
const WaitLimit = 90 * time.Second

// Nobody is the uid and gid a home runs as when the tests run as root:
// qmail-lspawn refuses to deliver as root.
const Nobody = 65534

// Manager is a running qmail-send and the lines of its log.
type Manager struct {
	t       testing.TB
	Cmd     *exec.Cmd
	resumed bool
	mu      sync.Mutex
	changed *sync.Cond
	log     []string
	eof     bool
}

// Start starts cmd, which must become qmail-send (qmail-start does) with
// its log on cmd's stdout. resumed says the queue already holds messages
// an earlier run logged, for the log check of Stop. qmail-send is killed
// when the test ends if it still runs.
func Start(t testing.TB, cmd *exec.Cmd, resumed bool) *Manager {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &Manager{t: t, Cmd: cmd, resumed: resumed}
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

// WaitMatches waits until n log lines match re, and returns the matches
// of re's groups in every matching line. It fails the test when the log
// ends or WaitLimit passes first.
func (m *Manager) WaitMatches(re string, n int) [][]string {
	m.t.Helper()
	rx := regexp.MustCompile(re)
	expired := false
	timer := time.AfterFunc(WaitLimit, func() {
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

// WaitLines waits until n log lines match re and returns every matching
// line.
func (m *Manager) WaitLines(re string, n int) []string {
	m.t.Helper()
	var lines []string
	for _, sub := range m.WaitMatches(re, n) {
		lines = append(lines, sub[0])
	}
	return lines
}

// Lines is the log so far.
func (m *Manager) Lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.log...)
}

// Signal sends sig to qmail-send.
func (m *Manager) Signal(sig os.Signal) {
	m.t.Helper()
	if err := m.Cmd.Process.Signal(sig); err != nil {
		m.t.Fatalf("signalling qmail-send: %v", err)
	}
}

// WaitSignalTaken waits until sig is no longer pending for qmail-send,
// that is until the kernel has delivered it to the Go runtime.
func (m *Manager) WaitSignalTaken(sig syscall.Signal) {
	m.t.Helper()
	status := fmt.Sprintf("/proc/%d/status", m.Cmd.Process.Pid)
	deadline := time.Now().Add(WaitLimit)
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

// Stop sends TERM, waits for "status: exiting" and for qmail-send to
// exit 0, and checks the whole log against qmail-log(5).
func (m *Manager) Stop() {
	m.t.Helper()
	m.Signal(syscall.SIGTERM)
	m.WaitMatches(`^status: exiting$`, 1)
	if err := m.Cmd.Wait(); err != nil {
		m.t.Fatalf("qmail-send: %v", err)
	}
	m.Check(false)
}

// Kill is a crash: SIGKILL, then the log up to it, checked as a log
// that may end in the middle of a delivery.
func (m *Manager) Kill() []string {
	m.t.Helper()
	m.Signal(syscall.SIGKILL)
	m.Cmd.Wait()
	m.mu.Lock()
	for !m.eof {
		m.changed.Wait()
	}
	m.mu.Unlock()
	m.Check(true)
	return m.Lines()
}

// Check parses the log as qmail-log(5) describes it and pairs deliveries
// and messages the way qmailanalog's matchup does; truncated says the
// log may stop short (a crash).
func (m *Manager) Check(truncated bool) {
	m.t.Helper()
	problems := sendlog.Check(m.Lines(), sendlog.Options{Truncated: truncated, Resumed: m.resumed})
	for _, p := range problems {
		m.t.Errorf("qmail-log(5): %s", p)
	}
	if len(problems) > 0 {
		m.t.Logf("the log:\n%s", strings.Join(m.Lines(), "\n"))
	}
}

// RunAs makes home usable by Nobody when the tests run as root, and
// returns the attributes that run a program as Nobody (nil when not
// root, and the caller's own account is used).
func RunAs(t testing.TB, home string) *syscall.SysProcAttr {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	ChownTree(t, home, Nobody, Nobody)
	// The programs and the home must be reachable through their parents.
	for _, dir := range []string{filepath.Dir(home), filepath.Dir(testenv.Program(t, "qmail-send"))} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return NobodyAttr()
}

// NobodyAttr runs a program as Nobody without supplementary groups.
func NobodyAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody, Groups: []uint32{}}}
}

// ChownTree gives everything under dir to uid and gid.
func ChownTree(t testing.TB, dir string, uid, gid int) {
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

// WriteFakeRemote installs home/bin/fake-remote, a $QMAILREMOTE that
// accepts every message, reporting ip as the peer's address, and keeps a
// copy (its three arguments, then the message) in home/remote-out/.
func WriteFakeRemote(t testing.TB, home, ip string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(home, "remote-out"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n" +
		"f=$(mktemp \"$QMAILHOME/remote-out/msg.XXXXXX\") || exit 111\n" +
		"{ printf '%s\\n' \"$1\" \"$2\" \"$3\"; cat; } > \"$f\" || exit 111\n" +
		"printf 'r\\0K" + ip + " accepted message./Remote host said: 250 ok\\n\\0'\n"
	p := filepath.Join(home, "bin", "fake-remote")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// RemoteOut returns what the fake remote kept.
func RemoteOut(t testing.TB, home string) []string {
	t.Helper()
	return readAll(t, filepath.Join(home, "remote-out"))
}

// MaildirMessages returns the contents of the messages in a maildir's
// new/.
func MaildirMessages(t testing.TB, dir string) []string {
	t.Helper()
	return readAll(t, filepath.Join(dir, "new"))
}

func readAll(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// WaitMaildir waits until a maildir holds n messages and returns them.
func WaitMaildir(t testing.TB, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	for {
		got := MaildirMessages(t, dir)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d of %d messages", dir, len(got), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// AliasMaildir makes home/alias/name/ a maildir and routes
// alias/.qmail-ext (ext "": alias/.qmail) to it; it returns its path.
func AliasMaildir(t testing.TB, home, ext, name string) string {
	t.Helper()
	dir := filepath.Join(home, "alias", name)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dot := ".qmail"
	if ext != "" {
		dot += "-" + ext
	}
	p := filepath.Join(home, "alias", dot)
	if err := os.WriteFile(p, []byte("./"+name+"/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// QueueEmpty fails the test if a message is left anywhere in the queue
// of home.
func QueueEmpty(t testing.TB, home string) {
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

// Enqueue gives the qmail-queue that cmd runs a message and its
// envelope, and fails the test unless it accepts them.
func Enqueue(t testing.TB, cmd *exec.Cmd, msg, sender string, recips ...string) {
	t.Helper()
	envR, envW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer envR.Close()
	cmd.Stdin = strings.NewReader(msg)
	cmd.Stdout = envR
	if err := cmd.Start(); err != nil {
		envW.Close()
		t.Fatal(err)
	}
	envR.Close()
	_, werr := io.WriteString(envW, queue.EncodeEnvelope(sender, recips))
	envW.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		t.Fatalf("qmail-queue: %v, writing the envelope: %v", err, werr)
	}
}
