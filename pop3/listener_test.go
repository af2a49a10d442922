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
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// startPopupListener runs "qmail-popup --listen 127.0.0.1:0 [--listen
// [::1]:0] -u UID -g GID args..." with extra environment and reads the
// addresses it reports (127.0.0.1's first, then ::1's when available).
func startPopupListener(t *testing.T, popup string, env []string, args ...string) *testenv.Listener {
	t.Helper()
	argv := append(testenv.LoopbackListen(t), "-u", strconv.Itoa(os.Getuid()), "-g", strconv.Itoa(os.Getgid()))
	return testenv.StartListener(t, popup, append(argv, args...), append(os.Environ(), env...))
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
	return testenv.TCPRules(t, filepath.Join(dir, "tcp.pop3.cdb"), text)
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

	host, port := splitPort(t, l.Addrs[0])
	if s := poplibAt(t, host, port, "plain", "bob", "s3cret"); s.Error != "-ERR authorization failed" {
		t.Errorf("the listener's password, overridden by the rule: %+v", s)
	}
	checkSession(t, poplibAt(t, host, port, "plain", "bob", "rule-pass"))
	if got := strings.Join(listFiles(t, md), " "); got != "cur/2000.second.host:2,S" {
		t.Errorf("maildir after the IPv4 session: %s", got)
	}
	if len(l.Addrs) > 1 {
		host, port := splitPort(t, l.Addrs[1])
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
	conn, err := net.Dial("tcp", l.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if len(b) != 0 {
		t.Errorf("denied client got %q", b)
	}
	log, err := l.Stop()
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
	host, port := splitPort(t, l.Addrs[0])
	checkSession(t, poplibAt(t, host, port, "pop3s", "bob", "s3cret"))

	// mpop fetches and deletes what is left, over the last address
	// (IPv6 when available).
	host, port = splitPort(t, l.Addrs[len(l.Addrs)-1])
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
	if _, err := l.Stop(); err != nil {
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

// TestPopupListenerStopEndsLoggedInSession: on TERM, a logged-in session
// (qmail-pop3d running on a copy of the socket) that stays idle is ended
// after -grace rather than after the 1200 s timeout; the listener exits
// 0 and, as the client never sent QUIT, the message it marked deleted is
// still there.
func TestPopupListenerStopEndsLoggedInSession(t *testing.T) {
	t.Parallel()
	w, md, _, env, chain := listenerChain(t)
	before := strings.Join(listFiles(t, md), " ")
	l := startPopupListener(t, w.popup, env, append([]string{"-grace", "1ms"}, chain...)...)
	conn, err := net.Dial("tcp", l.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	say := func(cmd, want string) {
		t.Helper()
		if cmd != "" {
			io.WriteString(conn, cmd+"\r\n")
		}
		line, err := r.ReadString('\n')
		if !strings.HasPrefix(line, want) {
			t.Fatalf("after %q got %q (%v), want %q...", cmd, line, err, want)
		}
	}
	say("", "+OK <")
	say("USER bob", "+OK ")
	say("PASS s3cret", "+OK ")
	say("DELE 1", "+OK ")
	if _, err := l.Stop(); err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Errorf("client got %q after the stop", rest)
	}
	if after := strings.Join(listFiles(t, md), " "); after != before {
		t.Errorf("maildir %q became %q without QUIT", before, after)
	}
}
