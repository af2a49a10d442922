package send_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
	"github.com/goqmail/goqmail/send/sendlog"
)

// waitLimit bounds how long a test waits for qmail-send to do something
// before it fails; it is a deadline for a hang, not a timing assertion.
const waitLimit = 90 * time.Second

// unprivileged is the account the queue manager runs as when the tests
// run as root: qmail-lspawn refuses to deliver as root, and an
// unprivileged home has no alias account.
const unprivileged = 65534

var programs = []string{"qmail-queue", "qmail-start", "qmail-send", "qmail-lspawn", "qmail-rspawn", "qmail-clean", "qmail-local"}

// newHome makes a test home for the queue manager, with a QMAILREMOTE
// script that accepts every message and keeps a copy in remote-out/.
func newHome(t *testing.T) string {
	t.Helper()
	home := testenv.NewHome(t, programs...)
	if err := os.Mkdir(filepath.Join(home, "remote-out"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n" +
		"f=$(mktemp \"$QMAILHOME/remote-out/msg.XXXXXX\") || exit 111\n" +
		"{ printf '%s\\n' \"$1\" \"$2\" \"$3\"; cat; } > \"$f\" || exit 111\n" +
		"printf 'r\\0K1.2.3.4 accepted message./Remote host said: 250 ok\\n\\0'\n"
	writeFile(t, filepath.Join(home, "bin", "fake-remote"), script, 0o755)
	return home
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// maildir makes home/alias/name/ a maildir and routes alias/.qmail-ext
// (ext "" for alias/.qmail) to it.
func maildir(t *testing.T, home, ext, name string) string {
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
	writeFile(t, filepath.Join(home, "alias", dot), "./"+name+"/\n", 0o600)
	return dir
}

// credentials makes a home usable by the unprivileged account when the
// tests run as root, and returns the attributes that run a program as
// that account (nil when not root).
func credentials(t *testing.T, home string) *syscall.SysProcAttr {
	t.Helper()
	if os.Getuid() != 0 {
		return nil
	}
	err := filepath.Walk(home, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, unprivileged, unprivileged)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The programs and the home must be reachable through their parents.
	for _, dir := range []string{filepath.Dir(home), filepath.Dir(testenv.Program(t, "qmail-send"))} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivileged, Gid: unprivileged, Groups: []uint32{}}}
}

func env(home string) []string {
	return append(os.Environ(), "QMAILHOME="+home, "QMAILREMOTE="+filepath.Join(home, "bin", "fake-remote"))
}

// enqueue queues a message with the real qmail-queue and returns its id.
func enqueue(t *testing.T, home string, attr *syscall.SysProcAttr, msg, sender string, recips ...string) {
	t.Helper()
	envR, envW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-queue"))
	cmd.Env = env(home)
	cmd.Stdin = strings.NewReader(msg)
	cmd.Stdout = envR
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	envR.Close()
	io.WriteString(envW, queue.EncodeEnvelope(sender, recips))
	envW.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("qmail-queue: %v", err)
	}
}

// manager is a running qmail-start (which became qmail-send) with its log.
type manager struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	log  []string
	done bool
}

func start(t *testing.T, home string, attr *syscall.SysProcAttr) *manager {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-start"), "./Maildir/")
	cmd.Env = env(home)
	cmd.SysProcAttr = attr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &manager{t: t, cmd: cmd}
	m.cond = sync.NewCond(&m.mu)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m.mu.Lock()
			m.log = append(m.log, sc.Text())
			m.mu.Unlock()
			m.cond.Broadcast()
		}
		m.mu.Lock()
		m.done = true
		m.mu.Unlock()
		m.cond.Broadcast()
	}()
	t.Cleanup(func() {
		if m.cmd.ProcessState == nil {
			m.cmd.Process.Kill()
			m.cmd.Wait()
		}
	})
	return m
}

// waitFor waits until the log has a line matching re and returns it.
func (m *manager) waitFor(re string) []string {
	m.t.Helper()
	return m.waitCount(re, 1)
}

// waitCount waits until n log lines match re and returns them.
func (m *manager) waitCount(re string, n int) []string {
	m.t.Helper()
	rx := regexp.MustCompile(re)
	timer := time.AfterFunc(waitLimit, func() {
		m.mu.Lock()
		m.done = true
		m.mu.Unlock()
		m.cond.Broadcast()
	})
	defer timer.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		var hits []string
		for _, l := range m.log {
			if rx.MatchString(l) {
				hits = append(hits, l)
			}
		}
		if len(hits) >= n {
			return hits
		}
		if m.done {
			m.t.Fatalf("log has %d of %d lines matching %q:\n%s", len(hits), n, re, strings.Join(m.log, "\n"))
		}
		m.cond.Wait()
	}
}

func (m *manager) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.log...)
}

func (m *manager) signal(sig os.Signal) {
	m.t.Helper()
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatal(err)
	}
}

// stop sends SIGTERM and waits for "status: exiting" and the exit.
func (m *manager) stop() {
	m.t.Helper()
	m.signal(syscall.SIGTERM)
	m.waitFor(`^status: exiting$`)
	if err := m.cmd.Wait(); err != nil {
		m.t.Fatalf("qmail-send: %v", err)
	}
	checkLog(m.t, m.lines())
}

// checkLog parses a log as qmail-log(5) describes it and pairs
// deliveries and messages the way qmailanalog's matchup does.
func checkLog(t *testing.T, lines []string) {
	t.Helper()
	for _, p := range sendlog.Check(lines, sendlog.Options{Resumed: true}) {
		t.Error(p)
	}
}

// files lists the messages of a maildir's new/ with their contents.
func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, "new", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// queueEmpty fails unless no message is left in the queue.
func queueEmpty(t *testing.T, home string) {
	t.Helper()
	for _, dir := range []string{"mess", "info", "local", "remote", "todo", "intd", "bounce"} {
		err := filepath.Walk(filepath.Join(home, "queue", dir), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				t.Errorf("left in the queue: %s", p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func remoteOut(t *testing.T, home string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(home, "remote-out"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(home, "remote-out", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func must(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}
