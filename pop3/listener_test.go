package pop3_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// popupListener is a standalone qmail-popup started by a test.
type popupListener struct {
	addrs []string // 127.0.0.1's first, then ::1's when available
	stop  func() (log string, err error)
}

// startPopupListener runs "qmail-popup --listen 127.0.0.1:0 [--listen
// [::1]:0] -u UID -g GID args..." with extra environment and reads the
// addresses it reports; stop sends TERM and returns the log and exit
// status.
func startPopupListener(t *testing.T, popup string, env []string, args ...string) *popupListener {
	t.Helper()
	argv := []string{"--listen", "127.0.0.1:0"}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		argv = append(argv, "--listen", "[::1]:0")
	} else {
		t.Logf("no IPv6 loopback here: %v", err)
	}
	argv = append(argv, "-u", strconv.Itoa(os.Getuid()), "-g", strconv.Itoa(os.Getgid()))
	cmd := exec.Command(popup, append(argv, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stderr)
	l := &popupListener{}
	for range strings.Count(strings.Join(argv, " "), "--listen") {
		line, err := r.ReadString('\n')
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "qmail-popup: listening on ")
		if err != nil || !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("qmail-popup did not start: %v %q", err, line)
		}
		l.addrs = append(l.addrs, addr)
	}
	log := &strings.Builder{}
	done := make(chan struct{})
	go func() { io.Copy(log, r); close(done) }()
	var once sync.Once
	var waitErr error
	stop := func(sig os.Signal) (string, error) {
		once.Do(func() {
			cmd.Process.Signal(sig)
			waitErr = cmd.Wait()
			<-done
		})
		return log.String(), waitErr
	}
	t.Cleanup(func() {
		if out, _ := stop(os.Kill); t.Failed() {
			t.Logf("qmail-popup log:\n%s", out)
		}
	})
	l.stop = func() (string, error) { return stop(syscall.SIGTERM) }
	return l
}

// listenerChain makes what a listener test needs: a world, a maildir
// for bob (owned by nobody when root), a qmail home, and the arguments
// of qmail-popup after its options.
func listenerChain(t *testing.T) (w *world, md, qmailHome string, env, chain []string) {
	t.Helper()
	testenv.Tool(t, "python3", "python3")
	w = newWorld(t)
	home := filepath.Join(w.dir, "home")
	md = maildir(t, home, nobody, nobody, twoMessages)
	checkpassword, err := filepath.Abs(filepath.Join("testdata", "checkpassword.py"))
	if err != nil {
		t.Fatal(err)
	}
	qmailHome = filepath.Join(w.dir, "qmail")
	if err := os.MkdirAll(filepath.Join(qmailHome, "control"), 0o755); err != nil {
		t.Fatal(err)
	}
	env = []string{"FAKE_USER=bob", "FAKE_PASS=s3cret", "FAKE_HOME=" + home, "QMAILHOME=" + qmailHome}
	chain = []string{"--", "pop.example", checkpassword, w.pop3d, "Maildir"}
	return w, md, qmailHome, env, chain
}

// makeRules compiles tcprules text into dir/tcp.pop3.cdb.
func makeRules(t *testing.T, dir, text string) string {
	t.Helper()
	tcprules := testenv.Tool(t, "tcprules", "ucspi-tcp")
	cdb := filepath.Join(dir, "tcp.pop3.cdb")
	cmd := exec.Command(tcprules, cdb, cdb+".tmp")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tcprules: %v\n%s", err, out)
	}
	return cdb
}

func splitPort(t *testing.T, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// TestPopupListener: qmail-popup --listen serves poplib over IPv4 and
// IPv6; the checkpassword chain runs with the connection's environment
// (a rule gives 127.0.0.1 another password), then a rule denies the
// client, and TERM stops the listener.
func TestPopupListener(t *testing.T) {
	t.Parallel()
	w, md, _, env, chain := listenerChain(t)
	rules := makeRules(t, w.dir, "127.0.0.1:allow,FAKE_PASS=\"rule-pass\"\n:allow\n")
	l := startPopupListener(t, w.popup, env, append([]string{"-x", rules}, chain...)...)

	host, port := splitPort(t, l.addrs[0])
	if s := poplibAt(t, host, port, "plain", "bob", "s3cret"); s.Error != "-ERR authorization failed" {
		t.Errorf("the listener's password, overridden by the rule: %+v", s)
	}
	checkSession(t, poplibAt(t, host, port, "plain", "bob", "rule-pass"))
	if got := strings.Join(listFiles(t, md), " "); got != "cur/2000.second.host:2,S" {
		t.Errorf("maildir after the IPv4 session: %s", got)
	}
	if len(l.addrs) > 1 {
		host, port := splitPort(t, l.addrs[1])
		s := poplibAt(t, host, port, "apop", "bob", "s3cret")
		if s.Error != "" || s.Login != "+OK " || len(s.Stat) != 2 || s.Stat[0] != 1 || s.Quit != "+OK " {
			t.Errorf("APOP over IPv6 without the rule: %+v", s)
		}
		if !strings.HasSuffix(s.Welcome, "@pop.example>") {
			t.Errorf("greeting %q", s.Welcome)
		}
		if got := listFiles(t, md); len(got) != 0 {
			t.Errorf("maildir after the IPv6 session: %q", got)
		}
	}

	makeRules(t, w.dir, "127.0.0.1:deny\n:allow\n")
	conn, err := net.Dial("tcp", l.addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if len(b) != 0 {
		t.Errorf("denied client got %q", b)
	}
	log, err := l.stop()
	if err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
	if !strings.Contains(log, "qmail-popup: deny 127.0.0.1\n") {
		t.Errorf("log lacks the denial:\n%s", log)
	}
}

// TestPopupListenerPOP3S: a listener with $POP3S and a certificate
// speaks TLS from the first byte to poplib and to mpop; the chain's
// session is relayed through TLS.
func TestPopupListenerPOP3S(t *testing.T) {
	t.Parallel()
	mpop := testenv.Tool(t, "mpop", "mpop")
	w, md, qmailHome, env, chain := listenerChain(t)
	writeCert(t, qmailHome)
	l := startPopupListener(t, w.popup, append(env, "POP3S="), chain...)
	host, port := splitPort(t, l.addrs[0])
	checkSession(t, poplibAt(t, host, port, "pop3s", "bob", "s3cret"))

	// mpop fetches and deletes what is left, over the last address
	// (IPv6 when available).
	host, port = splitPort(t, l.addrs[len(l.addrs)-1])
	mbox := filepath.Join(w.dir, "mbox")
	pwfile := filepath.Join(w.dir, "pw")
	if err := os.WriteFile(pwfile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mpop, "-C", "/dev/null", "--host="+host, "--port="+port, "--user=bob",
		"--passwordeval=cat "+pwfile, "--auth=user", "--tls=on", "--tls-starttls=off", "--tls-certcheck=off",
		"--delivery=mbox,"+mbox, "--keep=off", "--only-new=off", "--uidls-file="+filepath.Join(w.dir, "uidls"))
	cmd.Env = append(os.Environ(), "HOME="+w.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mpop: %v\n%s", err, out)
	}
	b, err := os.ReadFile(mbox)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Subject: second\n\nbody\n") {
		t.Errorf("mpop's mbox:\n%s", b)
	}
	if got := listFiles(t, md); len(got) != 0 {
		t.Errorf("maildir after mpop: %q", got)
	}
	if _, err := l.stop(); err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
}

// TestPopupListenerUsage: the listener needs a hostname and a program.
func TestPopupListenerUsage(t *testing.T) {
	t.Parallel()
	popup := testenv.Program(t, "qmail-popup")
	for _, args := range [][]string{
		{"--listen", "127.0.0.1:0"},
		{"--listen", "127.0.0.1:0", "--", "pop.example"},
		{"--listen", "127.0.0.1:0", "-c", "x", "--", "pop.example", "/bin/true"},
	} {
		cmd := exec.Command(popup, args...)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 100 {
			t.Errorf("qmail-popup %q: exit %d, want 100\n%s", args, code, out)
		}
	}
}
