package qmtp_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/qmtp"
)

// startListener runs "PROGRAM --listen 127.0.0.1:0 [--listen [::1]:0]
// -l server.example -u UID -g GID args..." in home with extra
// environment, and reads the addresses it reports (127.0.0.1 first,
// then ::1 when available).
func startListener(t *testing.T, home, program string, env []string, args ...string) *testenv.Listener {
	t.Helper()
	argv := append(testenv.LoopbackListen(t), "-l", "server.example", "-u", strconv.Itoa(os.Getuid()), "-g", strconv.Itoa(os.Getgid()))
	return testenv.StartListener(t, filepath.Join(home, "bin", program), append(argv, args...),
		append(append(os.Environ(), "QMAILHOME="+home), env...))
}

// makeRules compiles tcprules text into home/tcp.cdb with ucspi-tcp's
// tcprules; compiling again replaces the rules of a running listener.
func makeRules(t *testing.T, dir, text string) string {
	t.Helper()
	return testenv.TCPRules(t, filepath.Join(dir, "tcp.cdb"), text)
}

// qmtpSend sends one QMTP message on a new connection to addr and
// returns the reply netstring of each recipient.
func qmtpSend(t *testing.T, addr, body, sender string, rcpts ...string) []string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var list string
	for _, r := range rcpts {
		list += ns(r)
	}
	if _, err := io.WriteString(conn, ns("\n"+body)+ns(sender)+ns(list)); err != nil {
		t.Fatal(err)
	}
	in := bufio.NewReader(conn)
	var replies []string
	for range rcpts {
		r, err := qmtp.ReadNetstring(in, 1000)
		if err != nil {
			t.Fatalf("QMTP reply from %s: %v (after %q)", addr, err, replies)
		}
		replies = append(replies, string(r))
	}
	return replies
}

var kok = regexp.MustCompile(`^Kok [0-9]+ qp [0-9]+$`)

const notRcpthost = "Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"

// TestQMTPListener: qmail-qmtpd --listen on IPv4 and IPv6, a rule that
// makes 127.0.0.1 a relay client (RELAYCLIENT applies to it alone), a
// rule that denies it, and a graceful stop by TERM.
func TestQMTPListener(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-qmtpd", "qmail-queue")
	testenv.WriteControl(t, home, "rcpthosts", "example.com\n")
	rules := makeRules(t, home, "127.0.0.1:allow,RELAYCLIENT=\"\"\n:allow\n")
	l := startListener(t, home, "qmail-qmtpd", nil, "-x", rules)

	got := qmtpSend(t, l.Addrs[0], "Subject: v4\n\nrelayed\n", "a@client.example", "far@elsewhere.example", "u@example.com")
	if len(got) != 2 || !kok.MatchString(got[0]) || !kok.MatchString(got[1]) {
		t.Errorf("relay client over IPv4: %q", got)
	}
	wantQueued := 1
	if len(l.Addrs) > 1 {
		got := qmtpSend(t, l.Addrs[1], "Subject: v6\n\nnot relayed\n", "b@client.example", "far@elsewhere.example", "u@example.com")
		if len(got) != 2 || got[0] != notRcpthost || !kok.MatchString(got[1]) {
			t.Errorf("client without the rule over IPv6: %q", got)
		}
		wantQueued++
	}
	msgs := readQueue(t, home)
	if len(msgs) != wantQueued {
		t.Fatalf("%d messages queued, want %d: %+v", len(msgs), wantQueued, msgs)
	}
	for _, m := range msgs {
		switch {
		case strings.HasSuffix(m.mess, "\n\nrelayed\n"):
			if !strings.Contains(m.mess, "\nReceived: from unknown (127.0.0.1)\n  by server.example with QMTP; ") ||
				!strings.HasSuffix(m.todo, "Fa@client.example\x00Tfar@elsewhere.example\x00Tu@example.com\x00") {
				t.Errorf("IPv4 message %q envelope %q", m.mess, m.todo)
			}
		case strings.HasSuffix(m.mess, "\n\nnot relayed\n"):
			if !strings.Contains(m.mess, "\nReceived: from unknown (::1)\n  by server.example with QMTP; ") ||
				!strings.HasSuffix(m.todo, "Fb@client.example\x00Tu@example.com\x00") {
				t.Errorf("IPv6 message %q envelope %q", m.mess, m.todo)
			}
		default:
			t.Errorf("unexpected message %q", m.mess)
		}
	}

	// A malformed session is logged, one line naming the client.
	bad, err := net.Dial("tcp", l.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	bad.Write([]byte("1x:"))
	if b, _ := io.ReadAll(bad); len(b) != 0 {
		t.Errorf("reply to a malformed netstring: %q", b)
	}
	bad.Close()

	// The rules are read per connection: denying 127.0.0.1 applies at once.
	makeRules(t, home, "127.0.0.1:deny\n:allow\n")
	conn, err := net.Dial("tcp", l.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte(ns("\nx\n") + ns("s") + ns(ns("u@example.com"))))
	b, _ := io.ReadAll(conn)
	conn.Close()
	if len(b) != 0 {
		t.Errorf("denied client got %q", b)
	}
	log, err := l.Stop()
	if err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
	if !strings.Contains(log, "qmail-qmtpd: deny 127.0.0.1\n") {
		t.Errorf("log lacks the denial:\n%s", log)
	}
	if !regexp.MustCompile(`(?m)^qmail-qmtpd: 127\.0\.0\.1: ".*malformed.*"$`).MatchString(log) {
		t.Errorf("log lacks the malformed session:\n%s", log)
	}
	if n := len(readQueue(t, home)); n != wantQueued {
		t.Errorf("%d messages queued after the denied client, want %d", n, wantQueued)
	}
}

// TestQMTPListenerRuleQueue: a rule's QMAILQUEUE and DATABYTES apply to
// that client's sessions, and the queue program gets the connection's
// environment, not the listener's.
func TestQMTPListenerRuleQueue(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-qmtpd", "qmail-queue")
	envFile := filepath.Join(home, "queue-env")
	script := "#!/bin/sh\nenv > " + envFile + "\nexec \"$QMAILHOME/bin/qmail-queue\"\n"
	if err := os.WriteFile(filepath.Join(home, "bin", "env-queue"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rules := makeRules(t, home, "127.0.0.1:allow,QMAILQUEUE=\"bin/env-queue\",DATABYTES=\"100\",MARK=\"from-rule\"\n:allow\n")
	l := startListener(t, home, "qmail-qmtpd", nil, "-x", rules)
	if got := qmtpSend(t, l.Addrs[0], strings.Repeat("x", 200)+"\n", "a@c.example", "u@"+testenv.Me); len(got) != 1 ||
		got[0] != "Dsorry, that message size exceeds my databytes limit (#5.3.4)" {
		t.Errorf("over the rule's DATABYTES: %q", got)
	}
	if got := qmtpSend(t, l.Addrs[0], "small\n", "a@c.example", "u@"+testenv.Me); len(got) != 1 || !kok.MatchString(got[0]) {
		t.Errorf("small message: %q", got)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("the rule's queue program did not run: %v", err)
	}
	for _, want := range []string{"\nMARK=from-rule\n", "\nTCPREMOTEIP=127.0.0.1\n", "\nPROTO=TCP\n", "\nTCPLOCALHOST=server.example\n"} {
		if !strings.Contains("\n"+string(env), want) {
			t.Errorf("queue program environment lacks %q:\n%s", want, env)
		}
	}
	if msgs := readQueue(t, home); len(msgs) != 1 || !strings.HasSuffix(msgs[0].mess, "\nsmall\n") {
		t.Errorf("queue: %+v", msgs)
	}
	if len(l.Addrs) > 1 {
		os.Remove(envFile)
		// No rule for ::1: the listener's own queue, no size limit.
		if got := qmtpSend(t, l.Addrs[1], strings.Repeat("y", 200)+"\n", "b@c.example", "u@"+testenv.Me); len(got) != 1 || !kok.MatchString(got[0]) {
			t.Errorf("IPv6 client without the rule: %q", got)
		}
		if _, err := os.Stat(envFile); err == nil {
			t.Errorf("the rule's queue program ran for a client without the rule")
		}
	}
}

// TestQMQPListener: qmail-inject with qmail-qmqpc as its queue sends to
// qmail-qmqpd --listen, over IPv4 and IPv6; then a rule denies the client
// and qmail-qmqpc reports the broken exchange.
func TestQMQPListener(t *testing.T) {
	t.Parallel()
	server := testenv.NewHome(t, "qmail-qmqpd", "qmail-queue")
	rules := makeRules(t, server, "127.0.0.1:allow,MARK=\"v4\"\n:allow\n")
	l := startListener(t, server, "qmail-qmqpd", nil, "-x", rules)
	client := testenv.NewHome(t, "qmail-inject", "qmail-qmqpc")
	inject := func(servers, subject string) (string, error) {
		testenv.WriteControl(t, client, "qmqpservers", servers+"\n")
		cmd := exec.Command(filepath.Join(client, "bin", "qmail-inject"), "-fsender@client.example", "rcpt@far.example")
		cmd.Env = append(os.Environ(), "QMAILHOME="+client, "QMAILQUEUE=bin/qmail-qmqpc")
		cmd.Stdin = strings.NewReader("Subject: " + subject + "\n\nhello over QMQP\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	want := 0
	for i, addr := range l.Addrs {
		if out, err := inject(addr, "via "+addr); err != nil {
			t.Fatalf("qmail-inject via %s: %v\n%s", addr, err, out)
		}
		want++
		msgs := readQueue(t, server)
		if len(msgs) != want {
			t.Fatalf("%d messages in the server's queue, want %d", len(msgs), want)
		}
		ip := []string{"127.0.0.1", "::1"}[i]
		found := false
		for _, m := range msgs {
			if strings.Contains(m.mess, "Subject: via "+addr+"\n") {
				found = true
				if !strings.Contains(m.mess, "\nReceived: from unknown ("+ip+")\n  by server.example with QMQP; ") ||
					!strings.HasSuffix(m.todo, "Fsender@client.example\x00Trcpt@far.example\x00") {
					t.Errorf("message %q envelope %q", m.mess, m.todo)
				}
			}
		}
		if !found {
			t.Errorf("message via %s not queued", addr)
		}
	}

	makeRules(t, server, "127.0.0.1:deny\n:allow\n")
	out, err := inject(l.Addrs[0], "denied")
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("qmail-inject through a denied qmail-qmqpc: %v\n%s", err, out)
	}
	log, err := l.Stop()
	if err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
	if !strings.Contains(log, "qmail-qmqpd: deny 127.0.0.1\n") {
		t.Errorf("log lacks the denial:\n%s", log)
	}
	if n := len(readQueue(t, server)); n != want {
		t.Errorf("%d messages queued after the denied client, want %d", n, want)
	}
}

// TestListenerArguments: stray arguments and a missing address are
// refused before anything is bound.
func TestListenerArguments(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-qmtpd", "qmail-qmqpd")
	for _, tt := range []struct {
		program string
		args    []string
		code    int
	}{
		{"qmail-qmtpd", []string{"--listen", "127.0.0.1:0", "extra"}, 100},
		{"qmail-qmqpd", []string{"--listen", "127.0.0.1:0", "--", "extra"}, 100},
		{"qmail-qmtpd", []string{"--listen", "127.0.0.1:0", "-c", "many"}, 100},
		{"qmail-qmqpd", []string{"--listen", "256.0.0.1:0"}, 111},
	} {
		cmd := exec.Command(filepath.Join(home, "bin", tt.program), tt.args...)
		cmd.Env = append(os.Environ(), "QMAILHOME="+home)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != tt.code {
			t.Errorf("%s %q: exit %d, want %d\n%s", tt.program, tt.args, code, tt.code, out)
		}
	}
}
