package qmtp_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/qmtp"
)

// tcpserve runs "tcpserver -R -H -l server.example 127.0.0.1 0 program"
// with QMAILHOME=home and returns the address it listens on.
func tcpserve(t *testing.T, home, program string, env ...string) string {
	t.Helper()
	tcpserver := testenv.Tool(t, "tcpserver", "ucspi-tcp")
	cmd := exec.Command(tcpserver, "-1", "-R", "-H", "-l", "server.example", "127.0.0.1", "0", filepath.Join(home, "bin", program))
	cmd.Env = append(append(os.Environ(), "QMAILHOME="+home), env...)
	cmd.Dir = home
	return "127.0.0.1:" + testenv.TCPServer(t, cmd)
}

// queuedMessage is one message in a qmail queue: its mess file and its
// todo envelope.
type queuedMessage struct {
	mess, todo string
}

// readQueue returns the messages waiting in home's queue (todo), sorted
// by message contents.
func readQueue(t *testing.T, home string) []queuedMessage {
	t.Helper()
	qdir := filepath.Join(home, "queue")
	byID := map[string]*queuedMessage{}
	err := filepath.Walk(qdir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(qdir, path)
		parts := strings.Split(rel, string(filepath.Separator))
		id := parts[len(parts)-1]
		switch parts[0] {
		case "mess", "todo":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			m := byID[id]
			if m == nil {
				m = &queuedMessage{}
				byID[id] = m
			}
			if parts[0] == "mess" {
				m.mess = string(b)
			} else {
				m.todo = string(b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []queuedMessage
	for id, m := range byID {
		if m.todo == "" || m.mess == "" {
			t.Errorf("queue message %s incomplete: %+v", id, m)
			continue
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].mess < out[j].mess })
	return out
}

func ns(s string) string { return string(qmtp.AppendNetstring(nil, s)) }

// TestQMTPUnderTcpserver drives the real qmail-qmtpd under tcpserver with
// several messages on one connection, LF and CRLF bodies, into a real
// queue.
func TestQMTPUnderTcpserver(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-qmtpd", "qmail-queue")
	testenv.WriteControl(t, home, "rcpthosts", "example.com\n")
	addr := tcpserve(t, home, "qmail-qmtpd")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Twenty messages on one connection, LF and CRLF bodies alternating.
	type testMsg struct{ body, sender, rcpt, stored string }
	var msgs []testMsg
	for i := 0; i < 20; i++ {
		m := testMsg{
			sender: fmt.Sprintf("s%d@client.example", i),
			rcpt:   fmt.Sprintf("u%d@example.com", i),
			stored: fmt.Sprintf("Subject: %d\n\nline one\n.line two\n", i),
		}
		if i%2 == 0 {
			m.body = "\n" + m.stored
		} else {
			m.body = "\r" + strings.ReplaceAll(m.stored, "\n", "\r\n")
		}
		msgs = append(msgs, m)
	}
	msgs[3].sender = ""
	var req strings.Builder
	for _, m := range msgs {
		req.WriteString(ns(m.body) + ns(m.sender) + ns(ns(m.rcpt)+ns("x@elsewhere.example")))
	}
	if _, err := conn.Write([]byte(req.String())); err != nil {
		t.Fatal(err)
	}
	in := bufio.NewReader(conn)
	ok := regexp.MustCompile(`^Kok [0-9]+ qp [0-9]+$`)
	for i := range msgs {
		r1, err := qmtp.ReadNetstring(in, 1000)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		r2, err := qmtp.ReadNetstring(in, 1000)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if !ok.Match(r1) || string(r2) != "Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)" {
			t.Errorf("replies for message %d: %q %q", i, r1, r2)
		}
	}
	conn.Close()
	got := readQueue(t, home)
	if len(got) != len(msgs) {
		t.Fatalf("%d messages queued, want %d", len(got), len(msgs))
	}
	received := regexp.MustCompile(`(?m)^Received: from unknown \(127\.0\.0\.1\)\n  by server\.example with QMTP; `)
	for _, m := range msgs {
		found := false
		for _, q := range got {
			if strings.HasSuffix(q.mess, "\n"+m.stored) {
				found = true
				if !received.MatchString(q.mess) {
					t.Errorf("no QMTP Received line in %q", q.mess)
				}
				if !strings.HasSuffix(q.todo, "F"+m.sender+"\x00T"+m.rcpt+"\x00") {
					t.Errorf("envelope %q, want sender %q recipient %q", q.todo, m.sender, m.rcpt)
				}
			}
		}
		if !found {
			t.Errorf("message %q not queued; queue: %+v", m.stored, got)
		}
	}
}

// TestQMQPChain sends a message with qmail-inject in one home, using
// qmail-qmqpc as its QMAILQUEUE, to qmail-qmqpd of a second home under
// tcpserver, and finds it in the second home's queue.
func TestQMQPChain(t *testing.T) {
	t.Parallel()
	server := testenv.NewHome(t, "qmail-qmqpd", "qmail-queue")
	addr := tcpserve(t, server, "qmail-qmqpd")
	client := testenv.NewHome(t, "qmail-inject", "qmail-qmqpc")
	testenv.WriteControl(t, client, "qmqpservers", "# the QMQP hub\nnot-an-address\n"+addr+"\n")

	inject := exec.Command(filepath.Join(client, "bin", "qmail-inject"), "-fsender@client.example", "rcpt@far.example")
	inject.Env = append(os.Environ(), "QMAILHOME="+client, "QMAILQUEUE=bin/qmail-qmqpc")
	inject.Stdin = strings.NewReader("Subject: via qmqp\n\nhello over QMQP\n")
	if out, err := inject.CombinedOutput(); err != nil {
		t.Fatalf("qmail-inject: %v\n%s", err, out)
	}
	got := readQueue(t, server)
	if len(got) != 1 {
		t.Fatalf("%d messages in the server's queue, want 1", len(got))
	}
	m := got[0]
	if !strings.Contains(m.mess, "\n  by server.example with QMQP; ") || !strings.Contains(m.mess, "Subject: via qmqp\n") ||
		!strings.HasSuffix(m.mess, "\n\nhello over QMQP\n") {
		t.Errorf("queued message:\n%s", m.mess)
	}
	if !strings.HasSuffix(m.todo, "Fsender@client.example\x00Trcpt@far.example\x00") {
		t.Errorf("queued envelope %q", m.todo)
	}
	if left := readQueue(t, client); len(left) != 0 {
		t.Errorf("client home queued %d messages itself", len(left))
	}
}

// runProgram runs a built program with QMAILHOME=home, input on fd 0 and
// extra environment; it returns the exit code and fd 1 output.
func runProgram(t *testing.T, home, program, input string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", program))
	cmd.Env = append(append(os.Environ(), "QMAILHOME="+home), env...)
	cmd.Stdin = strings.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// TestServerExitCodes runs the real servers on malformed input.
func TestServerExitCodes(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-qmtpd", "qmail-qmqpd", "qmail-queue")
	tests := []struct {
		program, in, out string
		code             int
	}{
		{"qmail-qmtpd", "1x:", "", qmtp.ExitProtocol},
		{"qmail-qmtpd", "5:\nbody;", "", qmtp.ExitProtocol},
		{"qmail-qmtpd", "1000000000000000000:", "", qmtp.ExitResources},
		{"qmail-qmtpd", "100:\nstops here", "", qmtp.ExitOK},
		{"qmail-qmtpd", "", "", qmtp.ExitOK},
		{"qmail-qmtpd", ns("\nbody\n") + ns("s\x00") + ns(ns("u@"+testenv.Me)), ns("Dunacceptable sender (#5.1.7)"), qmtp.ExitOK},
		{"qmail-qmqpd", "12:" + ns("body") + ns("s") + ";", "", qmtp.ExitProtocol},
		{"qmail-qmqpd", "a:", "", qmtp.ExitProtocol},
		{"qmail-qmqpd", "1000000000000000000:", "", qmtp.ExitResources},
		{"qmail-qmqpd", "100:10:stops", "", qmtp.ExitOK},
		{"qmail-qmqpd", ns(ns("body\n") + ns("s") + ns(strings.Repeat("r", 1000))), ns("Dsorry, I can't accept addresses like that (#5.1.3)"), qmtp.ExitOK},
	}
	for _, tt := range tests {
		code, out := runProgram(t, home, tt.program, tt.in)
		if code != tt.code || out != tt.out {
			t.Errorf("%s on %q: exit %d, output %q; want %d, %q", tt.program, tt.in, code, out, tt.code, tt.out)
		}
	}
	if q := readQueue(t, home); len(q) != 0 {
		t.Errorf("%d messages queued from malformed input", len(q))
	}
}

// TestQmqpcExitCodes checks qmail-qmqpc's failures before and after
// connecting.
func TestQmqpcExitCodes(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-qmqpc")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	run := func(servers *string, envelope string) int {
		os.Remove(filepath.Join(home, "control", "qmqpservers"))
		if servers != nil {
			testenv.WriteControl(t, home, "qmqpservers", *servers)
		}
		cmd := exec.Command(filepath.Join(home, "bin", "qmail-qmqpc"))
		cmd.Env = append(os.Environ(), "QMAILHOME="+home)
		cmd.Stdin = strings.NewReader("Subject: x\n\nbody\n")
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = r
		w.WriteString(envelope)
		w.Close()
		err = cmd.Run()
		r.Close()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode()
	}
	str := func(s string) *string { return &s }
	good := "Fs@a\x00Tu@b\x00\x00"
	for _, tt := range []struct {
		servers  *string
		envelope string
		code     int
	}{
		{nil, good, qmtp.ExitNoServers},
		{str("# none\nmx.example\n"), good, qmtp.ExitNoServers},
		{str(closed + "\n"), good, qmtp.ExitConnRefused},
		{str(closed + "\n"), "Xs\x00\x00", qmtp.ExitBadEnvelope},
		{str(closed + "\n"), "Fs\x00Tu", qmtp.ExitBadEnvelope},
	} {
		if code := run(tt.servers, tt.envelope); code != tt.code {
			t.Errorf("servers %q envelope %q: exit %d, want %d", deref(tt.servers), tt.envelope, code, tt.code)
		}
	}
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-qmqpc"))
	cmd.Env = append(os.Environ(), "QMAILHOME="+filepath.Join(home, "missing"))
	if err := cmd.Run(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != qmtp.ExitNoHome {
		t.Errorf("missing home: %v, want exit %d", err, qmtp.ExitNoHome)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<missing>"
	}
	return *s
}
