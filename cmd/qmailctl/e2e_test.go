package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

// The programs a running mail system needs in its bin/.
var systemPrograms = []string{
	"qmailctl", "qmail-start", "qmail-send", "qmail-lspawn", "qmail-rspawn",
	"qmail-clean", "qmail-local", "qmail-queue", "qmail-smtpd", "qmail-newu",
	"qmail-newmrh", "qmail-qread", "qmail-qstat",
}

// system is a complete goqmail under a supervisor in a temporary
// directory, every service running as nobody (qmail never delivers as
// root).
type system struct {
	t                        *testing.T
	base, home, svc, logs    string
	maildir, rules, qmailctl string
	port                     int
	supervisor               string
}

func newSystem(t *testing.T, supervisor, smtpMode string) *system {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the supervised system test needs root in CI")
		}
		t.Skip("needs root: the supervisor runs the services as nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	base := t.TempDir()
	// nobody must reach the home through the temporary directories.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &system{
		t: t, base: base, home: filepath.Join(base, "qmail"), svc: filepath.Join(base, "service"),
		logs: filepath.Join(base, "log"), rules: filepath.Join(base, "tcp.smtp"), supervisor: supervisor,
	}
	bin := filepath.Join(base, "programs")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// Copies, not links: the test build directory is root's alone.
	for _, p := range systemPrograms {
		copyFile(t, testenv.Program(t, p), filepath.Join(bin, p))
	}
	s.qmailctl = filepath.Join(bin, "qmailctl")
	s.run("init", "--home", s.home, "--me", testenv.Me, "--unprivileged", "--programs", bin)
	// bin/ holds links to the copies; replace them by the files so the
	// home stands alone.
	for _, p := range systemPrograms {
		os.Remove(filepath.Join(s.home, "bin", p))
		copyFile(t, filepath.Join(bin, p), filepath.Join(s.home, "bin", p))
	}

	userHome := filepath.Join(base, "home", "demo")
	s.maildir = filepath.Join(userHome, "Maildir")
	if err := os.MkdirAll(userHome, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(s.maildir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	assign := fmt.Sprintf("=demo:nobody:%d:%d:%s:::\n.\n", uid, gid, userHome)
	writeFile(t, filepath.Join(s.home, "users", "assign"), assign)
	writeFile(t, s.rules, "127.:allow,RELAYCLIENT=\"\"\n:allow\n")
	out := s.run("cdb", "--home", s.home, "--rules", s.rules, "--rules-cdb", s.rules+".cdb")
	for _, want := range []string{"Reloaded " + s.rules + ".cdb.", "Rebuilt users/cdb."} {
		if !strings.Contains(out, want) {
			t.Errorf("qmailctl cdb said %q, want %q", out, want)
		}
	}
	for _, p := range []string{s.home, userHome} {
		chownTree(t, p, uid, gid)
	}

	s.port = testenv.FreePort(t)
	s.run("services", "install", "--home", s.home, "--dir", s.svc, "--for", supervisor,
		"--log-dir", filepath.Join(s.logs, "qmail"), "--rules-cdb", s.rules+".cdb",
		"--ip", "127.0.0.1", "--smtp-port", strconv.Itoa(s.port), "--run-as", "nobody", "--down", "--smtpd", smtpMode)
	return s
}

// run runs qmailctl and fails the test if it fails.
func (s *system) run(args ...string) string {
	s.t.Helper()
	out, err := s.runErr(args...)
	if err != nil {
		s.t.Fatalf("qmailctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *system) runErr(args ...string) (string, error) {
	cmd := exec.Command(s.qmailctl, args...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+s.home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// supervise starts the supervisor's scanner on the service directory and
// arranges for it, every supervised process and every process of this
// system to be gone when the test ends.
func (s *system) supervise(scanner string, stopArgs func(dir string) []string, stopTool string) {
	t := s.t
	cmd := exec.Command(scanner, s.svc)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var scanLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &scanLog, &scanLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range []string{"qmail-smtpd", "qmail-send"} {
			for _, d := range []string{filepath.Join(s.svc, name), filepath.Join(s.svc, name, "log")} {
				exec.Command(stopTool, stopArgs(d)...).Run()
			}
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		killProcessesUnder(s.base)
		if t.Failed() {
			t.Logf("%s output:\n%s", scanner, scanLog.String())
		}
	})
}

// killProcessesUnder kills what is left of this system: processes whose
// command line or working directory is below dir (all started by it).
func killProcessesUnder(dir string) {
	for range 50 {
		left := 0
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			pid, err := strconv.Atoi(p.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
			cwd, _ := os.Readlink(filepath.Join("/proc", p.Name(), "cwd"))
			if bytes.Contains(cmdline, []byte(dir)) || strings.HasPrefix(cwd, dir) {
				syscall.Kill(pid, syscall.SIGKILL)
				left++
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls cond for up to 30 seconds.
func (s *system) waitFor(what string, cond func() bool) {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	s.t.Fatalf("timed out waiting for %s\n%s", what, s.logsText())
}

func (s *system) logsText() string {
	var b strings.Builder
	filepath.Walk(s.logs, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "== %s\n%s\n", p, data)
		}
		return nil
	})
	return b.String()
}

func (s *system) logContains(sub, text string) bool {
	data, _ := os.ReadFile(filepath.Join(s.logs, "qmail", sub, "current"))
	return bytes.Contains(data, []byte(text))
}

func (s *system) accepting() bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// exercise is the common scenario: start, send a message with swaks,
// see it delivered and logged, stat, stop.
func (s *system) exercise(upMark, downMark string) {
	t := s.t
	global := []string{"--home", s.home, "--service-dir", s.svc}
	out := s.run(append([]string{"start"}, global...)...)
	if !strings.Contains(out, "Starting qmail") {
		t.Errorf("start said %q", out)
	}
	s.waitFor("qmail-smtpd to accept connections", s.accepting)

	swaks := exec.Command("swaks", "--server", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--from", "sender@example.org", "--to", "demo@"+testenv.Me,
		"--header", "Subject: supervised e2e", "--body", "delivered under "+s.supervisor)
	if b, err := swaks.CombinedOutput(); err != nil {
		t.Fatalf("swaks: %v\n%s\n%s", err, b, s.logsText())
	}
	var delivered []byte
	s.waitFor("delivery into the Maildir", func() bool {
		files, _ := os.ReadDir(filepath.Join(s.maildir, "new"))
		if len(files) == 0 {
			return false
		}
		delivered, _ = os.ReadFile(filepath.Join(s.maildir, "new", files[0].Name()))
		return true
	})
	for _, want := range []string{"Subject: supervised e2e", "delivered under " + s.supervisor, "Delivered-To: demo@" + testenv.Me} {
		if !bytes.Contains(delivered, []byte(want)) {
			t.Errorf("delivered message lacks %q:\n%s", want, delivered)
		}
	}
	s.waitFor("qmail-send's log of the delivery", func() bool {
		return s.logContains("", "delivery 1: success") && s.logContains("", "end msg")
	})
	s.waitFor("the SMTP log", func() bool { return s.logContains("smtpd", "Message accepted") })

	s.waitFor("an empty queue in qmailctl stat", func() bool {
		out, err := s.runErr(append([]string{"stat"}, global...)...)
		return err == nil && strings.Contains(out, "messages in queue: 0\n")
	})
	out = s.run(append([]string{"stat"}, global...)...)
	for _, want := range []string{filepath.Join(s.svc, "qmail-send") + ": " + upMark, filepath.Join(s.svc, "qmail-smtpd", "log") + ": " + upMark,
		"messages in queue: 0\nmessages in queue but not yet preprocessed: 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat lacks %q:\n%s", want, out)
		}
	}
	// The queue command shows the same empty queue, as JSON too.
	if out := s.run(append([]string{"queue", "--json"}, global...)...); !strings.Contains(out, `"queue": []`) {
		t.Errorf("queue --json: %s", out)
	}

	// The signals: pause shows in the supervisor's status, cont undoes
	// it; reload, doqueue and restart leave everything running.
	s.run(append([]string{"pause"}, global...)...)
	// svc and sv hand the command to the supervisor and return: poll.
	s.waitFor("stat to show qmail-send paused", func() bool {
		out := s.run(append([]string{"stat"}, global...)...)
		return strings.Count(out, "paused") == 2 // qmail-send and qmail-smtpd, not the logs
	})
	s.run(append([]string{"cont"}, global...)...)
	s.waitFor("stat to show nothing paused", func() bool {
		return !strings.Contains(s.run(append([]string{"stat"}, global...)...), "paused")
	})
	for _, cmd := range []string{"reload", "hup", "doqueue", "flush", "alrm", "restart"} {
		s.run(append([]string{cmd}, global...)...)
	}
	s.waitFor("qmail-smtpd to accept connections after restart", s.accepting)

	out = s.run(append([]string{"stop"}, global...)...)
	if !strings.Contains(out, "Stopping qmail") {
		t.Errorf("stop said %q", out)
	}
	s.waitFor("qmail-smtpd to stop accepting", func() bool { return !s.accepting() })
	s.waitFor("qmailctl stat to show qmail-send down", func() bool {
		out, _ := s.runErr(append([]string{"stat"}, global...)...)
		return strings.Contains(out, downMark)
	})
}

func TestSupervisedByDaemontools(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"svscan", "supervise", "svc", "svstat", "svok", "multilog", "setuidgid"} {
		testenv.Tool(t, tool, "daemontools")
	}
	testenv.Tool(t, "tcpserver", "ucspi-tcp")
	testenv.Tool(t, "tcprules", "ucspi-tcp")
	testenv.Tool(t, "swaks", "swaks")
	s := newSystem(t, "daemontools", "tcpserver")
	s.supervise("svscan", func(d string) []string { return []string{"-dx", d} }, "svc")
	s.waitFor("svscan to start supervise", func() bool {
		return exec.Command("svok", filepath.Join(s.svc, "qmail-send")).Run() == nil &&
			exec.Command("svok", filepath.Join(s.svc, "qmail-smtpd")).Run() == nil
	})
	// Nothing runs before qmailctl start: the services have down files.
	if s.accepting() {
		t.Fatal("qmail-smtpd accepts before qmailctl start")
	}
	s.exercise("up", filepath.Join(s.svc, "qmail-send")+": down")
}

func TestSupervisedByRunit(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"runsvdir", "runsv", "sv", "svlogd", "chpst"} {
		testenv.Tool(t, tool, "runit")
	}
	testenv.Tool(t, "tcprules", "ucspi-tcp")
	testenv.Tool(t, "swaks", "swaks")
	// qmail-smtpd's own listener here, tcpserver under daemontools.
	s := newSystem(t, "runit", "standalone")
	s.supervise("runsvdir", func(d string) []string { return []string{"exit", d} }, "sv")
	s.waitFor("runsvdir to start runsv", func() bool {
		_, err := os.Stat(filepath.Join(s.svc, "qmail-send", "supervise", "stat"))
		_, err2 := os.Stat(filepath.Join(s.svc, "qmail-smtpd", "supervise", "stat"))
		return err == nil && err2 == nil
	})
	if s.accepting() {
		t.Fatal("qmail-smtpd accepts before qmailctl start")
	}
	s.exercise("(pid", "down: "+filepath.Join(s.svc, "qmail-send")+":")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func chownTree(t *testing.T, root string, uid, gid int) {
	t.Helper()
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}
