package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/send/sendlog"
)

// This file holds what the remote-path tests share: an SMTP peer, a way
// to run qmail-remote, and a running qmail-send with its log.

// requireRoot skips a test that must bind port 25 when not root, and
// fails it in CI, where the tests run as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test binds port 25 and must run as root in CI")
	}
	t.Skip("binding port 25 needs root")
}

// listenPort25 binds port 25 on an address of 127.25.0.0/16 that no one
// else uses: qmail-remote reaches mail exchangers on port 25 only, and
// all of 127/8 is loopback on Linux, so each test gets its own address.
func listenPort25(t *testing.T) net.Listener {
	t.Helper()
	var lastErr error
	for range 50 {
		ip := fmt.Sprintf("127.25.%d.%d", rand.IntN(256), 1+rand.IntN(254))
		ln, err := net.Listen("tcp", ip+":25")
		if err == nil {
			return ln
		}
		lastErr = err
	}
	t.Fatalf("no free 127.25.x.y:25: %v", lastErr)
	return nil
}

// unusedPort25 returns an address of 127.25.0.0/16 where nothing listens
// on port 25: a connection there is refused at once.
func unusedPort25(t *testing.T) string {
	t.Helper()
	ln := listenPort25(t)
	ip := ln.Addr().(*net.TCPAddr).IP.String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return ip
}

// peerMessage is a message the peer accepted.
type peerMessage struct {
	From  string
	Rcpts []string
	Data  string
}

// smtpPeer is a go-smtp server standing for a remote mail exchanger.
type smtpPeer struct {
	ip   string // the address qmail-remote names in its reports
	port int

	// rejectRcpt: recipients refused with this error.
	rejectRcpt map[string]*smtp.SMTPError
	// deferMessages: how many messages to refuse with a 451 after the
	// final dot before accepting one.
	deferMessages int

	mu       sync.Mutex
	messages []peerMessage
	deferred int
}

// startPeer serves SMTP on ln; configure, when not nil, sets the peer's
// behaviour before it serves.
func startPeer(t *testing.T, ln net.Listener, configure func(*smtpPeer)) *smtpPeer {
	t.Helper()
	addr := ln.Addr().(*net.TCPAddr)
	p := &smtpPeer{ip: addr.IP.String(), port: addr.Port, rejectRcpt: map[string]*smtp.SMTPError{}}
	if configure != nil {
		configure(p)
	}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &peerSession{p: p}, nil
	}))
	s.Domain = "peer.e2e.test"
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.ErrorLog = quietLog{}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return p
}

// startLoopbackPeer serves SMTP on 127.0.0.1 with an ephemeral port, for
// routes that name a port.
func startLoopbackPeer(t *testing.T, configure func(*smtpPeer)) *smtpPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startPeer(t, ln, configure)
}

func (p *smtpPeer) received() []peerMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]peerMessage(nil), p.messages...)
}

func (p *smtpPeer) deferrals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deferred
}

type quietLog struct{}

func (quietLog) Printf(string, ...interface{}) {}
func (quietLog) Println(...interface{})        {}

type peerSession struct {
	p   *smtpPeer
	msg peerMessage
}

func (s *peerSession) Reset()        { s.msg = peerMessage{} }
func (s *peerSession) Logout() error { return nil }

func (s *peerSession) Mail(from string, _ *smtp.MailOptions) error {
	s.msg = peerMessage{From: from}
	return nil
}

func (s *peerSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.p.rejectRcpt[to]; e != nil {
		return e
	}
	s.msg.Rcpts = append(s.msg.Rcpts, to)
	return nil
}

// maxPeerMessage bounds what the peer keeps of one message.
const maxPeerMessage = 1 << 20

func (s *peerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, maxPeerMessage))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, r)
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.deferred < s.p.deferMessages {
		s.p.deferred++
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not now, try again"}
	}
	s.msg.Data = string(b)
	s.p.messages = append(s.p.messages, s.msg)
	return nil
}

// runRemote runs the built qmail-remote in home with msg as fd 0 (a
// regular file, as qmail-rspawn gives it) and returns its reports.
func runRemote(t *testing.T, home, msg string, args ...string) []string {
	t.Helper()
	msgPath := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(msgPath, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(msgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command(testenv.Program(t, "qmail-remote"), args...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qmail-remote %q: %v (stderr %q)", args, err, stderr.String())
	}
	if len(out) == 0 || out[len(out)-1] != 0 {
		t.Fatalf("qmail-remote %q: reports not NUL-terminated: %q", args, out)
	}
	return strings.Split(string(out[:len(out)-1]), "\x00")
}

// ---- qmail-send ----

// waitLimit bounds how long a test waits for qmail-send to log something;
// it catches a hang, it does not measure speed.
const waitLimit = 60 * time.Second

// unprivilegedID is the uid and gid (nobody) the mail system runs as
// when the tests run as root: qmail-lspawn refuses to deliver as root.
const unprivilegedID = 65534

// queuePrograms are the programs a home needs to queue a message and
// deliver it locally and remotely.
var queuePrograms = []string{"qmail-queue", "qmail-inject", "sendmail", "qmail-start", "qmail-send",
	"qmail-lspawn", "qmail-rspawn", "qmail-clean", "qmail-local", "qmail-remote"}

// runAs makes home usable by nobody when the tests run as root and
// returns the attributes that run a program as nobody (nil when not
// root).
func runAs(t *testing.T, home string) *syscall.SysProcAttr {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	err := filepath.Walk(home, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, unprivilegedID, unprivilegedID)
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
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivilegedID, Gid: unprivilegedID, Groups: []uint32{}}}
}

// maildirFor makes home/alias/name/ a maildir that alias/.qmail-name
// delivers to, and returns its path.
func maildirFor(t *testing.T, home, name string) string {
	t.Helper()
	dir := filepath.Join(home, "alias", name)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, "alias", ".qmail-"+name), []byte("./"+name+"/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// maildirMessages returns the contents of the messages in a maildir's new/.
func maildirMessages(t *testing.T, dir string) []string {
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

// inject runs qmail-inject or sendmail (prog) in home with msg on its
// input, as qmail's users do.
func inject(t *testing.T, home string, attr *syscall.SysProcAttr, msg, prog string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", prog), args...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home, "USER=alice")
	cmd.Stdin = strings.NewReader(msg)
	cmd.SysProcAttr = attr
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v: %s", prog, args, err, out)
	}
}

// sendManager is a running qmail-start, which became qmail-send, and
// the lines of its log.
type sendManager struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	log  []string
	done bool
}

func startSendManager(t *testing.T, home string, attr *syscall.SysProcAttr) *sendManager {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-start"), "./Maildir/")
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.SysProcAttr = attr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &sendManager{t: t, cmd: cmd}
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

// waitFor waits until the log has a line matching re and returns the
// first one.
func (m *sendManager) waitFor(re string) string {
	m.t.Helper()
	return m.waitCount(re, 1)[0]
}

// waitCount waits until n log lines match re and returns them.
func (m *sendManager) waitCount(re string, n int) []string {
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
			m.t.Fatalf("%d of %d log lines match %q:\n%s", len(hits), n, re, strings.Join(m.log, "\n"))
		}
		m.cond.Wait()
	}
}

func (m *sendManager) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.log...)
}

func (m *sendManager) signal(sig os.Signal) {
	m.t.Helper()
	if err := m.cmd.Process.Signal(sig); err != nil {
		m.t.Fatal(err)
	}
}

// stop sends SIGTERM, waits for qmail-send to exit cleanly, and checks
// its whole log against qmail-log(5).
func (m *sendManager) stop() {
	m.t.Helper()
	m.signal(syscall.SIGTERM)
	m.waitFor(`^status: exiting$`)
	if err := m.cmd.Wait(); err != nil {
		m.t.Fatalf("qmail-send: %v", err)
	}
	if problems := sendlog.Check(m.lines(), sendlog.Options{}); len(problems) > 0 {
		m.t.Errorf("qmail-send's log:\n%s\nbreaks qmail-log(5):\n%s", strings.Join(m.lines(), "\n"), strings.Join(problems, "\n"))
	}
}

// queueDrained fails unless every message left the queue.
func queueDrained(t *testing.T, home string) {
	t.Helper()
	for _, dir := range []string{"mess", "info", "local", "remote", "todo", "intd", "bounce"} {
		err := filepath.Walk(filepath.Join(home, "queue", dir), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				t.Errorf("left in the queue: %s", p)
			}
			return err
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}
