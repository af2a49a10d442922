package smtpd_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

// copyQueueProgram puts a copy of qmail-queue (not the shared symlink,
// whose mode the test changes) into home/bin, setuid when root: a root
// listener uses its queue writer only with a setuid qmail-queue, and
// runs the writer as that file's owner.
func copyQueueProgram(t *testing.T, home string, uid, gid int) string {
	t.Helper()
	data, err := os.ReadFile(testenv.Program(t, "qmail-queue"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, "bin", "qmail-queue")
	os.Remove(path)
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o711|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// smtpSend sends one message over a new connection and returns the reply
// to the final dot.
func smtpSend(t *testing.T, addr, body string) (string, error) {
	return smtpSendFrom(t, "", addr, body)
}

// smtpSendFrom is smtpSend from the local address local ("" any).
func smtpSendFrom(t *testing.T, local, addr, body string) (string, error) {
	d := net.Dialer{}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	steps := []string{"", "HELO client.example\r\n", "MAIL FROM:<a@client.example>\r\n", "RCPT TO:<u@" + testenv.Me + ">\r\n", "DATA\r\n", body + ".\r\n", "QUIT\r\n"}
	var last string
	for _, s := range steps {
		if s != "" {
			if _, err := io.WriteString(conn, s); err != nil {
				return "", err
			}
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("after %q: %w", s, err)
		}
		if strings.HasPrefix(s, "Subject") || strings.HasPrefix(s, body) {
			last = line
		}
		if line[0] != '2' && line[0] != '3' {
			return line, fmt.Errorf("%q answered %q", s, line)
		}
	}
	return last, nil
}

var qpReply = regexp.MustCompile(`^250 ok [0-9]+ qp ([0-9]+)\r\n$`)

// queuedMessages returns the contents of the messages in home's queue.
func queuedMessages(t *testing.T, home string) []string {
	t.Helper()
	q := filepath.Join(home, "queue")
	todo, err := os.ReadDir(filepath.Join(q, "todo"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range todo {
		id, _ := strconv.ParseUint(e.Name(), 10, 64)
		b, err := os.ReadFile(queue.MessPath(q, id))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestListenerQueueWriter: concurrent sessions of the listener are queued
// by its one queue writer (every "qp" is the writer's pid); after the
// writer is killed with SIGKILL, sessions run qmail-queue again and every
// message answered 250 is in the queue.
func TestListenerQueueWriter(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	copyQueueProgram(t, home, 0, 0)
	addrs, _, stop := startListener(t, home, nil)
	const n = 12
	replies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := smtpSend(t, addrs[0], fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
			replies[i] = r
		}()
	}
	wg.Wait()
	writerPid := ""
	for _, r := range replies {
		m := qpReply.FindStringSubmatch(r)
		if m == nil {
			t.Fatalf("reply %q", r)
		}
		if writerPid == "" {
			writerPid = m[1]
		} else if m[1] != writerPid {
			t.Errorf("qp %s and %s: not one writer", writerPid, m[1])
		}
	}
	cmdline, err := os.ReadFile("/proc/" + writerPid + "/cmdline")
	if err != nil || !strings.HasSuffix(string(cmdline), "qmail-queue\x00--writer\x00") {
		t.Fatalf("qp %s is not the writer: %q %v", writerPid, cmdline, err)
	}
	msgs := queuedMessages(t, home)
	if len(msgs) != n {
		t.Fatalf("%d messages queued, want %d", len(msgs), n)
	}
	for _, m := range msgs {
		if !strings.HasPrefix(m, "Received: (qmail "+writerPid+" invoked ") ||
			!strings.Contains(m, "\nReceived: from unknown (HELO client.example) (127.0.0.1)\n  by testhost.example with SMTP; ") {
			t.Errorf("queued %q", m)
		}
	}

	// SIGKILL while sessions are sending: each message answered 250 is
	// in the queue, the others were refused with 451, and the sessions
	// after the kill run qmail-queue.
	pid, _ := strconv.Atoi(writerPid)
	const m = 12
	answers := make([]string, m)
	for i := range m {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], _ = smtpSend(t, addrs[0], fmt.Sprintf("Subject: during %d\r\n\r\nbody\r\n", i))
		}()
		if i == m/2 {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	for i := range 3 {
		r, err := smtpSend(t, addrs[0], fmt.Sprintf("Subject: after %d\r\n\r\nbody\r\n", i))
		if m := qpReply.FindStringSubmatch(r); err != nil || m == nil || m[1] == writerPid {
			t.Errorf("after the kill: %q %v", r, err)
		}
		answers = append(answers, r)
	}
	queued := strings.Join(queuedMessages(t, home), "\x00")
	for i, r := range answers {
		subject := fmt.Sprintf("Subject: during %d\n", i)
		if i >= m {
			subject = fmt.Sprintf("Subject: after %d\n", i-m)
		}
		switch {
		case strings.HasPrefix(r, "250 "):
			if !strings.Contains(queued, subject) {
				t.Errorf("%q answered %q but not queued", subject, r)
			}
		case strings.HasPrefix(r, "451 "):
		default:
			t.Errorf("%q answered %q", subject, r)
		}
	}
	if log := stop(); !strings.Contains(log, "running qmail-queue per message") {
		t.Errorf("fallback not logged:\n%s", log)
	}
}

// TestListenerWriterPrivileges: as root, the writer runs as the owner of
// the setuid qmail-queue (qmailq) and the listener as qmaild, and the
// Received line says "invoked from network".
func TestListenerWriterPrivileges(t *testing.T) {
	t.Parallel()
	testenv.Root(t)
	qmailq, err := user.Lookup("qmailq")
	if err != nil {
		t.Fatalf("no user qmailq: %v", err)
	}
	qmaild, err := user.Lookup("qmaild")
	if err != nil {
		t.Fatalf("no user qmaild: %v", err)
	}
	quid, _ := strconv.Atoi(qmailq.Uid)
	qgid, _ := strconv.Atoi(qmailq.Gid)
	home := testenv.NewHome(t, "qmail-smtpd")
	for _, d := range []string{filepath.Dir(home), home} {
		os.Chmod(d, 0o755)
	}
	os.RemoveAll(filepath.Join(home, "queue"))
	if err := queue.Create(filepath.Join(home, "queue"), &queue.Owners{Qmailq: quid, Qmails: quid, Qmailr: quid, Qmail: qgid}); err != nil {
		t.Fatal(err)
	}
	copyQueueProgram(t, home, quid, qgid)
	l := testenv.StartListener(t, filepath.Join(home, "bin", "qmail-smtpd"),
		[]string{"--listen", "127.0.0.1:0", "-l", "testhost.example", "-user", "qmaild"},
		append(os.Environ(), "QMAILHOME="+home, "QMAILQUEUE="))
	r, err := smtpSend(t, l.Addrs[0], "Subject: root\r\n\r\nbody\r\n")
	if err != nil {
		t.Fatal(err)
	}
	m := qpReply.FindStringSubmatch(r)
	if m == nil {
		t.Fatalf("reply %q", r)
	}
	uids := func(pid string) string {
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "Uid:") {
				return line
			}
		}
		return ""
	}
	if got, want := uids(m[1]), "Uid:\t"+qmailq.Uid+"\t"+qmailq.Uid+"\t"+qmailq.Uid+"\t"+qmailq.Uid; got != want {
		t.Errorf("writer %s: %q, want %q", m[1], got, want)
	}
	if got, want := uids(strconv.Itoa(l.Cmd.Process.Pid)), "Uid:\t"+qmaild.Uid+"\t"+qmaild.Uid+"\t"+qmaild.Uid+"\t"+qmaild.Uid; got != want {
		t.Errorf("listener: %q, want %q", got, want)
	}
	msgs := queuedMessages(t, home)
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "Received: (qmail "+m[1]+" invoked from network); ") {
		t.Errorf("queued %q", msgs)
	}
}

// TestListenerWriterRuleQmailQueue: a tcprules QMAILQUEUE still chooses
// the queue program of its clients when the listener has a writer; the
// other clients go through the writer.
func TestListenerWriterRuleQmailQueue(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-smtpd")
	copyQueueProgram(t, home, 0, 0)
	writeCaptureQueue(t, home)
	rules := makeRules(t, home, "127.0.0.2:allow,QMAILQUEUE=\"bin/capture-queue\"\n:allow\n")
	addrs, _, _ := startListener(t, home, nil, "-x", rules)
	viaRule, err := smtpSendFrom(t, "127.0.0.2", addrs[0], "Subject: rule\r\n\r\nbody\r\n")
	if err != nil {
		t.Fatal(err)
	}
	viaWriter, err := smtpSend(t, addrs[0], "Subject: writer\r\n\r\nbody\r\n")
	if err != nil {
		t.Fatal(err)
	}
	capture := (&testenv.QueueCapture{Dir: filepath.Join(home, "capture")}).Single(t)
	if !strings.Contains(capture.Message, "Subject: rule\n") || !strings.HasSuffix(viaRule, " qp "+capture.Pid+"\r\n") {
		t.Errorf("the rule's QMAILQUEUE got %q, replied %q", capture.Message, viaRule)
	}
	msgs := queuedMessages(t, home)
	m := qpReply.FindStringSubmatch(viaWriter)
	if len(msgs) != 1 || m == nil || !strings.HasPrefix(msgs[0], "Received: (qmail "+m[1]+" invoked ") || !strings.Contains(msgs[0], "Subject: writer\n") {
		t.Fatalf("queued %q, replied %q", msgs, viaWriter)
	}
	cmdline, err := os.ReadFile("/proc/" + m[1] + "/cmdline")
	if err != nil || !strings.HasSuffix(string(cmdline), "qmail-queue\x00--writer\x00") {
		t.Errorf("qp %s is not the writer: %q %v", m[1], cmdline, err)
	}
}
