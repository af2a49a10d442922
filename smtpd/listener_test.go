package smtpd_test

import (
	"bufio"
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

	"github.com/emersion/go-smtp"
	"github.com/goqmail/goqmail/internal/testenv"
)

// startListener runs "qmail-smtpd --listen 127.0.0.1:0 ..." and returns the
// addresses it reports, the running command, and a function that stops
// it with TERM and returns its log.
func startListener(t *testing.T, home string, env []string, args ...string) ([]string, *exec.Cmd, func() string) {
	t.Helper()
	argv := append([]string{"--listen", "127.0.0.1:0", "-l", "testhost.example",
		"-u", strconv.Itoa(os.Getuid()), "-g", strconv.Itoa(os.Getgid())}, args...)
	if err := os.MkdirAll(filepath.Join(home, "capture"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := testenv.StartListener(t, filepath.Join(home, "bin", "qmail-smtpd"), argv,
		append(append(os.Environ(), "QMAILHOME="+home, "CAPTURE_DIR="+filepath.Join(home, "capture")), env...))
	return l.Addrs, l.Cmd, func() string { log, _ := l.Stop(); return log }
}

func TestListenerWithRules(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	rulesCDB := makeRules(t, home, "127.0.0.1:allow,RELAYCLIENT=\"\"\n:deny\n")
	addrs, cmd, _ := startListener(t, home, []string{"QMAILQUEUE=" + q}, "-x", rulesCDB)
	addr := addrs[0]

	// go-smtp's client: relaying allowed by the rule's RELAYCLIENT.
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("gosmtp.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("CHUNKING"); ok {
		t.Error("CHUNKING advertised")
	}
	if err := c.SendMail("a@client.example", []string{"far@elsewhere.example"}, strings.NewReader("Subject: go\r\n\r\nhello\r\n")); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	c.Quit()
	srv := &server{home: home, capture: filepath.Join(home, "capture")}
	msgs, envs := srv.captured(t)
	if len(msgs) != 1 || envs[0] != "Fa@client.example\x00Tfar@elsewhere.example\x00\x00" {
		t.Fatalf("captured %q %q", msgs, envs)
	}
	if !strings.HasPrefix(msgs[0], "Received: from unknown (HELO gosmtp.example) (127.0.0.1)\n  by testhost.example with SMTP; ") {
		t.Errorf("message %q", msgs[0])
	}

	// Control files are read per connection: a new greeting shows at once.
	testenv.WriteControl(t, home, "smtpgreeting", "changed.example hello\n")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	greet, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if greet != "220 changed.example hello ESMTP\r\n" {
		t.Errorf("greeting after change %q", greet)
	}

	// TERM: the listener stops accepting and exits 0.
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
}

// TestListenerSeesControlChanges: the listener keeps its control files
// until control/ changes (smtpd.ConfigCache); every way an admin changes
// rcpthosts shows at the next connection, as when each reads them.
func TestListenerSeesControlChanges(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	addrs, _, _ := startListener(t, home, []string{"QMAILQUEUE=" + q})
	rcptOK := func(domain string) bool {
		t.Helper()
		c, err := smtp.Dial(addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("gosmtp.example"); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail("a@client.example", nil); err != nil {
			t.Fatal(err)
		}
		return c.Rcpt("b@"+domain, nil) == nil
	}
	control := filepath.Join(home, "control")
	if rcptOK("new.example") || !rcptOK(testenv.Me) {
		t.Fatal("rcpthosts not applied")
	}
	// Replaced by a rename, as an editor or a script does.
	testenv.WriteControl(t, home, "rcpthosts.new", testenv.Me+"\nnew.example\n")
	if err := os.Rename(filepath.Join(control, "rcpthosts.new"), filepath.Join(control, "rcpthosts")); err != nil {
		t.Fatal(err)
	}
	if !rcptOK("new.example") {
		t.Error("rcpthosts replaced by a rename not seen")
	}
	// Written in place.
	testenv.WriteControl(t, home, "rcpthosts", testenv.Me+"\n")
	if rcptOK("new.example") {
		t.Error("rcpthosts written in place not seen")
	}
	// A symbolic link to a file elsewhere, changed there.
	shared := filepath.Join(home, "shared-rcpthosts")
	if err := os.WriteFile(shared, []byte(testenv.Me+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(control, "rcpthosts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shared, filepath.Join(control, "rcpthosts")); err != nil {
		t.Fatal(err)
	}
	if rcptOK("other.example") {
		t.Fatal("rcpthosts through a symbolic link not applied")
	}
	if err := os.WriteFile(shared, []byte(testenv.Me+"\nother.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !rcptOK("other.example") {
		t.Error("a change to the target of rcpthosts' symbolic link not seen")
	}
}

func TestListenerDeny(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	rulesCDB := makeRules(t, home, "127.0.:deny\n:allow\n")
	addrs, _, stop := startListener(t, home, nil, "-x", rulesCDB)
	addr := addrs[0]
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, err := io.ReadAll(conn)
	if len(b) != 0 {
		t.Errorf("denied client got %q (%v)", b, err)
	}
	if log := stop(); !strings.Contains(log, "qmail-smtpd: deny 127.0.0.1\n") {
		t.Errorf("log lacks the denial:\n%s", log)
	}
}

// TestListenerClients: swaks and Python's smtplib against the standalone
// listener, over IPv4 and (when the host has it) IPv6.
func TestListenerClients(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	extra := testenv.LoopbackListen(t)[2:] // ::1 when this host has it
	addrs, _, _ := startListener(t, home, []string{"QMAILQUEUE=" + q}, extra...)
	// swaks over IPv4 (Debian's swaks lacks IPv6 without IO::Socket::INET6),
	// smtplib over IPv6 when available.
	srv := &server{home: home, addr: addrs[0], capture: filepath.Join(home, "capture")}
	out, err := runSwaks(t, srv, "--from", "a@client.example", "--to", "b@"+testenv.Me, "--pipeline")
	if err != nil || !strings.Contains(out, "<-  250 ok ") {
		t.Errorf("swaks via %s: %v\n%s", srv.addr, err, out)
	}
	srv.addr = addrs[len(addrs)-1]
	if out := runSmtplib(t, srv, "plain"); !strings.Contains(out, "SENT") || !strings.Contains(out, "REFUSED 553") {
		t.Errorf("smtplib:\n%s", out)
	}
	msgs, _ := srv.captured(t)
	if len(msgs) != 2 {
		t.Errorf("captured %d messages, want 2", len(msgs))
	}
}

// TestListenerDropsPrivileges starts the listener as root with -user
// nobody: the process must run as nobody before the first connection.
func TestListenerDropsPrivileges(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root")
		}
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody: %v", err)
	}
	home := testenv.NewHome(t, "qmail-smtpd")
	for _, d := range []string{filepath.Dir(home), home} {
		os.Chmod(d, 0o755)
	}
	l := testenv.StartListener(t, filepath.Join(home, "bin", "qmail-smtpd"), []string{"--listen", "127.0.0.1:0", "-user", "nobody"},
		append(os.Environ(), "QMAILHOME="+home))
	cmd, addr := l.Cmd, l.Addrs[0]
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	greet, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if greet != "220 testhost.example ESMTP\r\n" {
		t.Errorf("greeting %q", greet)
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	want := "Uid:\t" + nobody.Uid + "\t" + nobody.Uid + "\t" + nobody.Uid + "\t" + nobody.Uid + "\n"
	if !strings.Contains(string(status), want) {
		t.Errorf("listener still privileged:\n%s", status)
	}
}

// makeRules compiles tcprules text into a cdb in home.
func makeRules(t *testing.T, home, text string) string {
	t.Helper()
	return testenv.TCPRules(t, filepath.Join(home, "tcp.smtp.cdb"), text)
}

// TestListenerRuleQmailQueue: a QMAILQUEUE set by a tcprules rule chooses
// the queue program of that client's sessions only, and the queue program
// gets the session's variables (the rule's and tcp-environ's).
func TestListenerRuleQmailQueue(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	writeCaptureQueue(t, home)
	// The listener's own environment names no queue program, and home/bin
	// has no qmail-queue: without the rule, DATA fails with exit 120.
	if err := os.WriteFile(filepath.Join(home, "bin", "env-queue"), []byte("#!/bin/sh\nenv > \"$CAPTURE_DIR/env\"\nexec \"$QMAILHOME/bin/capture-queue\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rules := makeRules(t, home, "127.0.0.1:allow,QMAILQUEUE=\"bin/env-queue\",MARK=\"from-rule\"\n:allow\n")
	addrs, _, _ := startListener(t, home, []string{"QMAILQUEUE="}, "-x", rules)
	srv := &server{home: home, addr: addrs[0], capture: filepath.Join(home, "capture")}
	out, err := runSwaks(t, srv, "--from", "a@client.example", "--to", "b@"+testenv.Me)
	if err != nil || !strings.Contains(out, "<-  250 ok ") {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	msgs, envs := srv.captured(t)
	if len(msgs) != 1 || envs[0] != "Fa@client.example\x00Tb@"+testenv.Me+"\x00\x00" {
		t.Fatalf("captured %q %q", msgs, envs)
	}
	env, err := os.ReadFile(filepath.Join(srv.capture, "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nMARK=from-rule\n", "\nTCPREMOTEIP=127.0.0.1\n", "\nPROTO=TCP\n", "\nTCPLOCALHOST=testhost.example\n"} {
		if !strings.Contains("\n"+string(env), want) {
			t.Errorf("queue program environment lacks %q:\n%s", want, env)
		}
	}

	// The same listener, a rule without QMAILQUEUE: bin/qmail-queue is
	// missing, and the client gets qmail's exec failure.
	makeRules(t, home, ":allow\n")
	out, err = runSwaks(t, srv, "--from", "a@client.example", "--to", "b@"+testenv.Me)
	if err == nil || !strings.Contains(out, "<** 451 unable to exec qq (#4.3.0)") {
		t.Errorf("without the rule's QMAILQUEUE: %v\n%s", err, out)
	}
}

// TestListenerStartTLSAuth: swaks negotiates STARTTLS with the standalone
// listener, then authenticates with AUTH PLAIN and LOGIN inside TLS and
// relays.
func TestListenerStartTLSAuth(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	testenv.WriteServerCert(t, filepath.Join(home, "control", "servercert.pem"), testenv.Me)
	q := writeCaptureQueue(t, home)
	wd, _ := os.Getwd()
	addrs, _, _ := startListener(t, home, []string{"QMAILQUEUE=" + q, "SMTPAUTH="},
		"--", filepath.Join(wd, "testdata", "checkpassword.py"), "/bin/true")
	srv := &server{home: home, addr: addrs[0], capture: filepath.Join(home, "capture")}
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		out, err := runSwaks(t, srv, "--tls", "--from", "alice@client.example", "--to", "friend@elsewhere.example",
			"--auth", mech, "--auth-user", "alice", "--auth-password", "secret")
		if err != nil || !strings.Contains(out, "<-  220 ready for tls") || !strings.Contains(out, "<~  235 ok, go ahead (#2.0.0)") ||
			!strings.Contains(out, "<~  250 ok ") {
			t.Errorf("swaks --tls --auth %s: %v\n%s", mech, err, out)
		}
	}
	out, err := runSwaks(t, srv, "--tls", "--from", "alice@client.example", "--to", "friend@elsewhere.example",
		"--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "wrong")
	if err == nil || !strings.Contains(out, "<~* 535 authentication failed (#5.7.1)") {
		t.Errorf("wrong password in TLS: %v\n%s", err, out)
	}
	msgs, envs := srv.captured(t)
	if len(msgs) != 2 {
		t.Fatalf("captured %d messages, want 2", len(msgs))
	}
	for i, m := range msgs {
		if envs[i] != "Falice@client.example\x00Tfriend@elsewhere.example\x00\x00" ||
			!strings.Contains(m, "(alice@127.0.0.1)\n  by testhost.example with ESMTPA; ") {
			t.Errorf("message %d, envelope %q:\n%s", i, envs[i], m)
		}
	}
}

// TestMsmtpSubmission: msmtp submits a message with AUTH PLAIN over a
// plain connection to the standalone listener and relays through it.
func TestMsmtpSubmission(t *testing.T) {
	t.Parallel()
	msmtp := testenv.Tool(t, "msmtp", "msmtp")
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	wd, _ := os.Getwd()
	addrs, _, _ := startListener(t, home, []string{"QMAILQUEUE=" + q, "SMTPAUTH=!"},
		"--", filepath.Join(wd, "testdata", "checkpassword.py"), "/bin/true")
	host, port, _ := net.SplitHostPort(addrs[0])
	// An empty configuration file keeps msmtp away from /etc/msmtprc.
	conf := filepath.Join(home, "msmtprc")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	send := func(password string) (string, error) {
		cmd := exec.Command(msmtp, "-C", conf, "--host="+host, "--port="+port, "--tls=off", "--domain=msmtp.example",
			"--auth=plain", "--user=alice", "--passwordeval=echo "+password, "--from=alice@client.example",
			"--timeout=60", "--", "friend@elsewhere.example")
		cmd.Stdin = strings.NewReader("From: alice@client.example\nTo: friend@elsewhere.example\nSubject: msmtp\n\nhello\n.dot\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := send("secret"); err != nil {
		t.Fatalf("msmtp: %v\n%s", err, out)
	}
	if out, err := send("wrong"); err == nil || !strings.Contains(out, "535") {
		t.Errorf("msmtp with a wrong password: %v\n%s", err, out)
	}
	srv := &server{home: home, capture: filepath.Join(home, "capture")}
	msgs, envs := srv.captured(t)
	if len(msgs) != 1 || envs[0] != "Falice@client.example\x00Tfriend@elsewhere.example\x00\x00" {
		t.Fatalf("captured %q %q", msgs, envs)
	}
	if !strings.HasPrefix(msgs[0], "Received: from unknown (HELO msmtp.example) (alice@127.0.0.1)\n  by testhost.example with ESMTPA; ") ||
		!strings.HasSuffix(msgs[0], "\n\nhello\n.dot\n") {
		t.Errorf("message:\n%s", msgs[0])
	}
}

// TestListenerStopClosesIdleSessions: on TERM with an idle client
// connected, the listener stops at the end of -grace instead of waiting
// for timeoutsmtpd (1200 s), exits 0, and the client sees the close.
func TestListenerStopClosesIdleSessions(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	addrs, cmd, _ := startListener(t, home, nil, "-grace", "50ms")
	conn, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if greet, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(greet, "220 ") {
		t.Fatalf("greeting %q %v", greet, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 && !strings.HasPrefix(string(rest), "451 ") {
		t.Errorf("idle client got %q", rest)
	}
}

// TestListenerStopKeepsAcceptedReply: TERM arrives while qmail-queue is
// still deciding a message; the grace period ends (the listener logs it)
// before qmail-queue exits 0. The listener still writes the 250 before
// it closes the connection, then exits 0: an accepted message is never
// left unanswered (the client would send it again).
func TestListenerStopKeepsAcceptedReply(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	flags := t.TempDir()
	slowQueue := filepath.Join(home, "bin", "slow-queue")
	script := "#!/bin/sh\ncat >/dev/null\n: >" + filepath.Join(flags, "started") +
		"\nwhile [ ! -e " + filepath.Join(flags, "go") + " ]; do sleep 0.01; done\ncat <&1 >/dev/null\nexit 0\n"
	if err := os.WriteFile(slowQueue, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-smtpd"), "--listen", "127.0.0.1:0", "-grace", "1ms",
		"-u", strconv.Itoa(os.Getuid()), "-g", strconv.Itoa(os.Getgid()))
	cmd.Env = append(os.Environ(), "QMAILHOME="+home, "QMAILQUEUE="+slowQueue, "RELAYCLIENT=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logr := bufio.NewReader(stderr)
	line, err := logr.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "qmail-smtpd: listening on ")
	if err != nil || !ok {
		t.Fatalf("start: %q %v", line, err)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "HELO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@"+testenv.Me+">\r\nDATA\r\n")
	r := bufio.NewReader(conn)
	for range 5 { // greeting, HELO, MAIL, RCPT, 354
		if l, err := r.ReadString('\n'); err != nil {
			t.Fatalf("dialog: %q %v", l, err)
		}
	}
	io.WriteString(conn, "Subject: x\r\n\r\nhi\r\n.\r\n")
	for {
		if _, err := os.Stat(filepath.Join(flags, "started")); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for {
		l, err := logr.ReadString('\n')
		if err != nil {
			t.Fatalf("log ended before the grace period did: %v", err)
		}
		if strings.Contains(l, "grace period") {
			break
		}
	}
	go io.Copy(io.Discard, logr)
	if err := os.WriteFile(filepath.Join(flags, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	reply, err := r.ReadString('\n')
	if !strings.HasPrefix(reply, "250 ok ") {
		t.Errorf("after qmail-queue's success the client got %q (%v)", reply, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
}
