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

	"github.com/emersion/go-smtp"
	"github.com/goqmail/goqmail/internal/testenv"
)

// startListener runs "qmail-smtpd --listen 127.0.0.1:0 ..." and returns the
// address it reports and the running command.
func startListener(t *testing.T, home string, env []string, args ...string) ([]string, *exec.Cmd, *strings.Builder) {
	t.Helper()
	argv := append([]string{"--listen", "127.0.0.1:0", "-l", "testhost.example",
		"-u", strconv.Itoa(os.Getuid()), "-g", strconv.Itoa(os.Getgid())}, args...)
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-smtpd"), argv...)
	cmd.Env = append(append(os.Environ(), "QMAILHOME="+home, "CAPTURE_DIR="+filepath.Join(home, "capture")), env...)
	if err := os.MkdirAll(filepath.Join(home, "capture"), 0o755); err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := &strings.Builder{}
	r := bufio.NewReader(stderr)
	var addrs []string
	for range 1 + strings.Count(strings.Join(args, " "), "--listen") {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "qmail-smtpd: listening on ") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("listener did not start: %v %q", err, line)
		}
		addrs = append(addrs, strings.TrimSpace(strings.TrimPrefix(line, "qmail-smtpd: listening on ")))
	}
	done := make(chan struct{})
	go func() { io.Copy(log, r); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-done
		if t.Failed() {
			t.Logf("listener log:\n%s", log.String())
		}
	})
	return addrs, cmd, log
}

func TestListenerWithRules(t *testing.T) {
	t.Parallel()
	tcprules := requireTool(t, "tcprules", "ucspi-tcp")
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	rulesCDB := filepath.Join(home, "tcp.smtp.cdb")
	mk := exec.Command(tcprules, rulesCDB, rulesCDB+".tmp")
	mk.Stdin = strings.NewReader("127.0.0.1:allow,RELAYCLIENT=\"\"\n:deny\n")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("tcprules: %v\n%s", err, out)
	}
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

func TestListenerDeny(t *testing.T) {
	t.Parallel()
	tcprules := requireTool(t, "tcprules", "ucspi-tcp")
	home := testenv.NewHome(t, "qmail-smtpd")
	rulesCDB := filepath.Join(home, "tcp.smtp.cdb")
	mk := exec.Command(tcprules, rulesCDB, rulesCDB+".tmp")
	mk.Stdin = strings.NewReader("127.0.:deny\n:allow\n")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("tcprules: %v\n%s", err, out)
	}
	addrs, _, _ := startListener(t, home, nil, "-x", rulesCDB)
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
}

// TestListenerClients: swaks and Python's smtplib against the standalone
// listener, over IPv4 and (when the host has it) IPv6.
func TestListenerClients(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	var extra []string
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		extra = []string{"--listen", "[::1]:0"}
	} else {
		t.Logf("no IPv6 loopback here: %v", err)
	}
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
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-smtpd"), "--listen", "127.0.0.1:0", "-user", "nobody")
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		t.Fatalf("listener did not start: %v", err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "qmail-smtpd: listening on "))
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
