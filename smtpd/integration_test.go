package smtpd_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

// server is qmail-smtpd running under the real tcpserver.
type server struct {
	home, addr, capture string
}

// startTcpserver runs "tcpserver -1 -R -H -l testhost.example -x rules
// 127.0.0.1 0 qmail-smtpd args..." with env added to its environment.
func startTcpserver(t *testing.T, home string, rules string, env []string, args ...string) *server {
	t.Helper()
	tcpserver := testenv.Tool(t, "tcpserver", "ucspi-tcp")
	rulesCDB := testenv.TCPRules(t, filepath.Join(home, "tcp.smtp.cdb"), rules)
	capture := filepath.Join(home, "capture")
	if err := os.MkdirAll(capture, 0o755); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"-1", "-R", "-H", "-l", "testhost.example", "-x", rulesCDB, "127.0.0.1", "0",
		filepath.Join(home, "bin", "qmail-smtpd")}, args...)
	cmd := exec.Command(tcpserver, argv...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home, "CAPTURE_DIR="+capture)
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = home
	logf, err := os.Create(filepath.Join(home, "smtpd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	// Registered first, so it runs after TCPServer's cleanup kills tcpserver.
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("server log:\n%s", b)
		}
	})
	port := testenv.TCPServer(t, cmd)
	return &server{home: home, addr: "127.0.0.1:" + port, capture: capture}
}

// writeCaptureQueue installs home/bin/capture-queue, a $QMAILQUEUE
// stand-in storing each message and its envelope in home/capture.
func writeCaptureQueue(t *testing.T, home string) string {
	t.Helper()
	return testenv.CaptureQueueAt(t, filepath.Join(home, "bin", "capture-queue"), filepath.Join(home, "capture"), 0).Program
}

// captured returns the messages the capture queue stored, with envelopes.
func (s *server) captured(t *testing.T) (msgs, envs []string) {
	t.Helper()
	return (&testenv.QueueCapture{Dir: s.capture}).Messages(t)
}

func runSwaks(t *testing.T, s *server, args ...string) (string, error) {
	t.Helper()
	swaks := testenv.Tool(t, "swaks", "swaks")
	host, port, _ := net.SplitHostPort(s.addr)
	argv := append([]string{"--server", host, "--port", port, "--helo", "client.example", "--timeout", "60"}, args...)
	out, err := exec.Command(swaks, argv...).CombinedOutput()
	return string(out), err
}

func TestSwaksUnderTcpserver(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q})

	out, err := runSwaks(t, srv, "--from", "alice@client.example", "--to", "bob@"+testenv.Me,
		"--header", "Subject: swaks test", "--body", "line one\n.leading dot\n", "--pipeline")
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(out, "<-  250 ok ") || !strings.Contains(out, " qp ") {
		t.Errorf("no 250 ok TIME qp PID in\n%s", out)
	}
	msgs, envs := srv.captured(t)
	if len(msgs) != 1 {
		t.Fatalf("captured %d messages, want 1", len(msgs))
	}
	if envs[0] != "Falice@client.example\x00Tbob@"+testenv.Me+"\x00\x00" {
		t.Errorf("envelope %q", envs[0])
	}
	first, _, _ := strings.Cut(msgs[0], "\n")
	if first != "Received: from unknown (HELO client.example) (127.0.0.1)" {
		t.Errorf("Received line %q", first)
	}
	if !strings.Contains(msgs[0], "\n  by testhost.example with SMTP; ") || !strings.Contains(msgs[0], "\n.leading dot\n") ||
		strings.Contains(msgs[0], "\r") {
		t.Errorf("message:\n%q", msgs[0])
	}

	// Not in rcpthosts, and the client may not relay.
	out, err = runSwaks(t, srv, "--from", "alice@client.example", "--to", "victim@elsewhere.example")
	if err == nil || !strings.Contains(out, "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)") {
		t.Errorf("relay attempt: err %v\n%s", err, out)
	}
	log, _ := os.ReadFile(filepath.Join(home, "smtpd.log"))
	if !strings.Contains(string(log), "from 127.0.0.1: Message accepted, qp ") {
		t.Errorf("log lacks the accepted line:\n%s", log)
	}
}

func TestRelayClientFromTcprules(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, "127.0.0.1:allow,RELAYCLIENT=\"\"\n:allow\n", []string{"QMAILQUEUE=" + q})
	out, err := runSwaks(t, srv, "--from", "alice@client.example", "--to", "friend@elsewhere.example")
	if err != nil {
		t.Fatalf("relay client refused: %v\n%s", err, out)
	}
	// Relay characters stay forbidden in MAIL FROM even for relay clients.
	out, err = runSwaks(t, srv, "--from", "a%b@client.example", "--to", "friend@elsewhere.example")
	if err == nil || !strings.Contains(out, "553 we don't relay (#5.7.1)") {
		t.Errorf("relay characters: %v\n%s", err, out)
	}
}

func TestRealQmailQueue(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd", "qmail-queue")
	srv := startTcpserver(t, home, ":allow\n", nil)
	out, err := runSwaks(t, srv, "--from", "alice@client.example", "--to", "bob@"+testenv.Me)
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	todo, _ := filepath.Glob(filepath.Join(home, "queue", "todo", "*"))
	if len(todo) != 1 {
		t.Fatalf("queue/todo holds %d messages, want 1", len(todo))
	}
}

// checkpwWrapper runs Debian's checkpw with a private /etc/passwd that
// gives user alice a home in the test's directory: checkpw reads
// ~alice/Maildir/.password of a real passwd entry. The bind mount lives
// in a private mount namespace (unshare -m) and needs root.
const checkpwWrapper = `#!/bin/sh
exec unshare -m sh -c 'mount --bind "$CHECKPW_PASSWD" /etc/passwd && exec "$@"' sh "$@"
`

func setupCheckpw(t *testing.T, home string) (args []string, env string) {
	t.Helper()
	checkpw := testenv.Tool(t, "checkpw", "checkpw")
	testenv.Tool(t, "unshare", "util-linux")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the checkpw test needs root for its private /etc/passwd")
		}
		t.Skip("the checkpw test needs root for its private /etc/passwd")
	}
	alice := filepath.Join(home, "alice")
	if err := os.MkdirAll(filepath.Join(alice, "Maildir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(alice, "Maildir", ".password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sys, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	passwd := string(sys) + "alice:x:" + strconv.Itoa(os.Getuid()) + ":" + strconv.Itoa(os.Getgid()) + "::" + alice + ":/bin/sh\n"
	passwdPath := filepath.Join(home, "passwd")
	if err := os.WriteFile(passwdPath, []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(home, "bin", "checkpw-wrapper")
	if err := os.WriteFile(wrapper, []byte(checkpwWrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{wrapper, checkpw, "/bin/true"}, "CHECKPW_PASSWD=" + passwdPath
}

func TestAuthWithCheckpw(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	args, pwenv := setupCheckpw(t, home)
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q, "SMTPAUTH=", pwenv}, args...)
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		out, err := runSwaks(t, srv, "--from", "alice@client.example", "--to", "friend@elsewhere.example",
			"--auth", mech, "--auth-user", "alice", "--auth-password", "s3cret")
		if err != nil || !strings.Contains(out, "235 ok, go ahead (#2.0.0)") {
			t.Errorf("AUTH %s: %v\n%s", mech, err, out)
		}
	}
	msgs, _ := srv.captured(t)
	if len(msgs) != 2 {
		t.Fatalf("%d messages relayed after AUTH, want 2", len(msgs))
	}
	if !strings.Contains(msgs[0], "(alice@127.0.0.1)\n  by testhost.example with ESMTPA; ") {
		t.Errorf("Received after AUTH:\n%s", msgs[0])
	}
	out, err := runSwaks(t, srv, "--from", "alice@client.example", "--to", "friend@elsewhere.example",
		"--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "wrong")
	if err == nil || !strings.Contains(out, "535 authentication failed (#5.7.1)") {
		t.Errorf("wrong password: %v\n%s", err, out)
	}
}

// TestAuthCramMD5 uses swaks's CRAM-MD5 against a checkpassword program
// that knows the secret (checkpw itself has no CRAM-MD5).
func TestAuthCramMD5(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	wd, _ := os.Getwd()
	prog := filepath.Join(wd, "testdata", "checkpassword.py")
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q, "SMTPAUTH=+cram"}, prog, "/bin/true")
	out, err := runSwaks(t, srv, "--from", "alice@client.example", "--to", "friend@elsewhere.example",
		"--auth", "CRAM-MD5", "--auth-user", "alice", "--auth-password", "secret")
	if err != nil || !strings.Contains(out, "235 ok, go ahead (#2.0.0)") {
		t.Fatalf("AUTH CRAM-MD5: %v\n%s", err, out)
	}
}

const smtplibScript = `
import smtplib, ssl, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = smtplib.SMTP(host, port, local_hostname="py.example", timeout=60)
code, msg = s.ehlo()
print("EHLO", code, msg.decode().replace("\n", "|"))
if mode == "tls":
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    print("STARTTLS", *s.starttls(context=ctx))
    s.ehlo()
try:
    s.sendmail("py@client.example", ["rcpt@testhost.example"], b"Subject: py\r\n\r\nbody\r\n.dot\r\n")
    print("SENT")
except smtplib.SMTPException as e:
    print("ERROR", e)
try:
    s.sendmail("py@client.example", ["open%relay@testhost.example"], b"x\r\n")
except smtplib.SMTPRecipientsRefused as e:
    print("REFUSED", e.recipients["open%relay@testhost.example"][0])
s.quit()
`

func runSmtplib(t *testing.T, srv *server, mode string) string {
	t.Helper()
	py := testenv.Tool(t, "python3", "python3")
	host, port, _ := net.SplitHostPort(srv.addr)
	out, err := exec.Command(py, "-c", smtplibScript, host, port, mode).CombinedOutput()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	return string(out)
}

func TestPythonSmtplib(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q})
	out := runSmtplib(t, srv, "plain")
	for _, want := range []string{"EHLO 250 testhost.example|PIPELINING|8BITMIME|SIZE 0", "SENT", "REFUSED 553"} {
		if !strings.Contains(out, want) {
			t.Errorf("smtplib output lacks %q:\n%s", want, out)
		}
	}
	msgs, _ := srv.captured(t)
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], "\n\nbody\n.dot\n") {
		t.Errorf("captured %q", msgs)
	}
}

func TestStartTLS(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	testenv.WriteServerCert(t, filepath.Join(home, "control", "servercert.pem"), testenv.Me)
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q})
	out := runSmtplib(t, srv, "tls")
	for _, want := range []string{"|STARTTLS|", "STARTTLS 220 b'ready for tls'", "SENT"} {
		if !strings.Contains(out, want) {
			t.Errorf("smtplib output lacks %q:\n%s", want, out)
		}
	}
	msgs, _ := srv.captured(t)
	if len(msgs) != 1 || !strings.Contains(msgs[0], " with ESMTPS (TLS_") {
		t.Errorf("captured %q", msgs)
	}
	out, err := runSwaks(t, srv, "--tls", "--from", "a@client.example", "--to", "b@testhost.example")
	if err != nil || !strings.Contains(out, "<-  220 ready for tls") || !strings.Contains(out, "<~  250 ok ") {
		t.Errorf("swaks --tls: %v\n%s", err, out)
	}
	testStartTLSInjection(t, srv.addr)
}

// testStartTLSInjection pipelines a command after STARTTLS in clear: it
// must be discarded, not executed inside the TLS session.
func testStartTLSInjection(t *testing.T, addr string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n') // greeting
	conn.Write([]byte("STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n"))
	if line, _ := r.ReadString('\n'); line != "220 ready for tls\r\n" {
		t.Fatalf("STARTTLS answer %q", line)
	}
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	tc.Write([]byte("RCPT TO:<b@testhost.example>\r\n"))
	tr := bufio.NewReader(tc)
	line, _ := tr.ReadString('\n')
	if line != "503 MAIL first (#5.5.1)\r\n" {
		t.Errorf("after injection, RCPT got %q", line)
	}
	// A second STARTTLS inside TLS is "unimplemented" (0006 keeps 502 here).
	tc.Write([]byte("STARTTLS\r\n"))
	if line, _ := tr.ReadString('\n'); line != "502 unimplemented (#5.5.1)\r\n" {
		t.Errorf("STARTTLS in TLS got %q", line)
	}
}

func TestSMTPS(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	testenv.WriteServerCert(t, filepath.Join(home, "control", "servercert.pem"), testenv.Me)
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q, "SMTPS=1"})
	out, err := runSwaks(t, srv, "--tlsc", "--from", "a@client.example", "--to", "b@testhost.example")
	if err != nil || !strings.Contains(out, "<~  220 testhost.example ESMTP") || !strings.Contains(out, "<~  250 ok ") {
		t.Errorf("swaks --tlsc: %v\n%s", err, out)
	}
}

func TestStartTLSBrokenCert(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	testenv.WriteControl(t, home, "servercert.pem", "not a certificate\n")
	srv := startTcpserver(t, home, ":allow\n", nil)
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	conn.Write([]byte("EHLO x\r\nSTARTTLS\r\n"))
	r := bufio.NewReader(conn)
	var got strings.Builder
	for {
		line, err := r.ReadString('\n')
		got.WriteString(line)
		if err != nil {
			t.Fatalf("replies %q: %v", got.String(), err)
		}
		if strings.HasPrefix(line, "454 ") {
			break
		}
	}
	if !strings.Contains(got.String(), "250-STARTTLS\r\n") || !strings.Contains(got.String(), "\r\n454 TLS missing certificate: ") {
		t.Errorf("replies %q", got.String())
	}
	// The session goes on in clear.
	conn.Write([]byte("NOOP\r\nQUIT\r\n"))
	rest, _ := io.ReadAll(r)
	if string(rest) != "250 ok\r\n221 testhost.example\r\n" {
		t.Errorf("after 454: %q", rest)
	}
}

// TestSmugglingBattery sends the SMTP smuggling variants over a real
// socket: none may produce a second message.
func TestSmugglingBattery(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q})
	ends := []string{"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\n.\r", "\r\n.\r", "\r\n\x00.\r\n"}
	for _, end := range ends {
		conn, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		payload := "HELO x\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@testhost.example>\r\nDATA\r\n" +
			"Subject: first" + end + "MAIL FROM:<evil@client.example>\r\nRCPT TO:<smuggled@testhost.example>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n"
		conn.Write([]byte(payload))
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		replies, _ := readAll(conn)
		conn.Close()
		if strings.Count(replies, "250 ok ") > 1 {
			t.Errorf("end %q: two messages accepted:\n%s", end, replies)
		}
	}
	_, envs := srv.captured(t)
	for _, e := range envs {
		if strings.Contains(e, "smuggled@") {
			t.Errorf("smuggled envelope queued: %q", e)
		}
	}
}

func readAll(c net.Conn) (string, error) {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), err
		}
	}
}

// TestBinaryOverPipes runs the built program with plain pipes on fd 0/1
// (no socket): the inetd-style path, and "421 unable to read controls".
func TestBinaryOverPipes(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	run := func(input string) (string, int) {
		cmd := exec.Command(filepath.Join(home, "bin", "qmail-smtpd"))
		cmd.Env = append(os.Environ(), "QMAILHOME="+home, "TCPREMOTEIP=192.0.2.3")
		cmd.Stdin = strings.NewReader(input)
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := run("NOOP\r\nQUIT\r\n"); out != "220 testhost.example ESMTP\r\n250 ok\r\n221 testhost.example\r\n" || code != 0 {
		t.Errorf("got %q, exit %d", out, code)
	}
	if out, code := run("NOOP\r\n"); code != 1 || out != "220 testhost.example ESMTP\r\n250 ok\r\n" {
		t.Errorf("EOF: got %q, exit %d", out, code)
	}
	os.Remove(filepath.Join(home, "control", "me"))
	if out, code := run("NOOP\r\n"); out != "421 unable to read controls (#4.3.0)\r\n" || code != 1 {
		t.Errorf("without me: got %q, exit %d", out, code)
	}
}

// TestOpenRelayBattery tries the classic relay tricks against a server
// whose rcpthosts lists only testhost.example: every recipient must be
// refused, and nothing queued.
func TestOpenRelayBattery(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	q := writeCaptureQueue(t, home)
	srv := startTcpserver(t, home, ":allow\n", []string{"QMAILQUEUE=" + q})
	rcpts := []string{
		"<victim%elsewhere.example@testhost.example>",
		"<elsewhere.example!victim@testhost.example>",
		"<victim@elsewhere.example@testhost.example>",
		"<\"victim@elsewhere.example\"@testhost.example>",
		"<victim\\@elsewhere.example@testhost.example>",
		"<@testhost.example:victim@elsewhere.example>",
		"<@testhost.example,@x.example:victim@elsewhere.example>",
		"<victim@elsewhere.example>",
		"<victim@[192.0.2.1]>", // [an address of this host] is local mail via localiphost
		"<victim@testhost.example.elsewhere.example>",
		"<victim@elsewhere.example.>",
		"<victim@ELSEWHERE.example>",
		"victim@elsewhere.example",
		"<victim%elsewhere.example>",
		"<elsewhere.example!victim>",
	}
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var b strings.Builder
	b.WriteString("EHLO x\r\nMAIL FROM:<a@client.example>\r\n")
	for _, r := range rcpts {
		b.WriteString("RCPT TO:" + r + "\r\n")
	}
	b.WriteString("DATA\r\nQUIT\r\n")
	conn.Write([]byte(b.String()))
	all, _ := readAll(conn)
	lines := strings.Split(strings.TrimSuffix(all, "\r\n"), "\r\n")
	// 220, 4 EHLO lines, MAIL 250, then one reply per RCPT, DATA, QUIT.
	if len(lines) != 6+len(rcpts)+2 {
		t.Fatalf("replies:\n%s", all)
	}
	for i, r := range rcpts {
		if got := lines[6+i]; !strings.HasPrefix(got, "553 ") {
			t.Errorf("RCPT TO:%s answered %q", r, got)
		}
	}
	if got := lines[6+len(rcpts)]; got != "503 RCPT first (#5.5.1)" {
		t.Errorf("DATA answered %q", got)
	}
	if msgs, _ := srv.captured(t); len(msgs) != 0 {
		t.Errorf("queued %q", msgs)
	}
}
