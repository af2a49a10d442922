package services

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

func TestNamesWithTCPServices(t *testing.T) {
	o := Defaults()
	if got := strings.Join(o.Names(), " "); got != "qmail-send qmail-smtpd" {
		t.Errorf("default names %q: POP3, QMTP and QMQP must be asked for", got)
	}
	o.POP3Port, o.POP3SPort, o.QMTPPort, o.QMQPPort = 110, 995, 209, 628
	if got := strings.Join(o.Names(), " "); got != "qmail-send qmail-smtpd qmail-pop3d qmail-pop3s qmail-qmtpd qmail-qmqpd" {
		t.Errorf("names %q", got)
	}
}

func TestRenderTCPServices(t *testing.T) {
	tests := []struct {
		supervisor, mode, file string
		want, notWant          []string
	}{
		{Daemontools, ModeTCPServer, "qmail-pop3d/run",
			[]string{"RULES=/etc/tcp.pop3.cdb\n", "-c \"$MAXCONN\" \\\n\t0 110 \\\n\t\"$QMAILHOME/bin/qmail-popup\" \"$LOCAL\" /bin/checkpassword /opt/q/bin/qmail-pop3d ./Maildir/\n"},
			[]string{"-u \"$QMAILDUID\"", "POP3S"}},
		{Daemontools, ModeTCPServer, "qmail-pop3d/log/run", []string{"multilog t /var/log/qmail/pop3d\n"}, nil},
		{Daemontools, ModeTCPServer, "qmail-pop3s/run",
			[]string{"POP3S=1 \\\n", "control/servercert.pem", "\t0 995 \\\n"}, nil},
		{Daemontools, ModeTCPServer, "qmail-qmtpd/run",
			[]string{"RULES=/etc/tcp.qmtp.cdb\n", "Refusing to start QMTP listener because it'll create an open relay", "-u \"$QMAILDUID\" -g \"$NOFILESGID\" 0 209 \\\n\t\"$QMAILHOME/bin/qmail-qmtpd\"\n", "id -u qmaild"},
			[]string{"WARNING"}},
		{Daemontools, ModeTCPServer, "qmail-qmqpd/run",
			[]string{"WARNING: qmail-qmqpd RELAYS MAIL FOR ANYONE WHO CAN CONNECT", "RULES=/etc/tcp.qmqp.cdb\n", "0 628 \\\n\t\"$QMAILHOME/bin/qmail-qmqpd\"\n", "if [ ! -f \"$RULES\" ]"},
			nil},
		{Runit, ModeStandalone, "qmail-pop3d/run",
			[]string{"\"$QMAILHOME/bin/qmail-popup\" --listen :110 -x \"$RULES\" -c \"$MAXCONN\" \\\n\t-l \"$LOCAL\" -user root -- \"$LOCAL\" /bin/checkpassword /opt/q/bin/qmail-pop3d ./Maildir/\n"},
			nil},
		{Runit, ModeStandalone, "qmail-qmqpd/log/run", []string{"svlogd -t /var/log/qmail/qmqpd\n"}, nil},
		{Runit, ModeStandalone, "qmail-qmqpd/run",
			[]string{"WARNING: qmail-qmqpd RELAYS", "--listen :628 -x \"$RULES\" -c \"$MAXCONN\" \\\n\t-l \"$LOCAL\" -u \"$QMAILDUID\" -g \"$NOFILESGID\"\n"}, nil},
		{Systemd, ModeTCPServer, "qmail-qmqpd.service",
			[]string{"# !!! WARNING: qmail-qmqpd RELAYS MAIL FOR ANYONE", "AssertPathExists=/etc/tcp.qmqp.cdb\n", " 0 628 /opt/q/bin/qmail-qmqpd'\n"}, nil},
		{Systemd, ModeTCPServer, "qmail-pop3s.service",
			[]string{"Environment=QMAILHOME=/opt/q POP3S=1\n", "AssertPathExists=/opt/q/control/servercert.pem\n",
				" 0 995 /opt/q/bin/qmail-popup \"$$(head -n 1 control/me)\" /bin/checkpassword /opt/q/bin/qmail-pop3d ./Maildir/'\n"},
			[]string{"id -u"}},
		{Systemd, ModeStandalone, "qmail-qmtpd.service",
			[]string{"AssertPathExists=/opt/q/control/rcpthosts\n", "--listen :209 -x /etc/tcp.qmtp.cdb ", "KillMode=mixed\n"}, nil},
	}
	for _, tt := range tests {
		o := Defaults()
		o.Home, o.Supervisor, o.SMTPMode = "/opt/q", tt.supervisor, tt.mode
		o.POP3Port, o.POP3SPort, o.QMTPPort, o.QMQPPort = 110, 995, 209, 628
		files, err := Render(o)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := files[tt.file]
		if !ok {
			t.Errorf("%s/%s: no %s", tt.supervisor, tt.mode, tt.file)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(string(got), w) {
				t.Errorf("%s/%s %s lacks %q:\n%s", tt.supervisor, tt.mode, tt.file, w, got)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(string(got), w) {
				t.Errorf("%s/%s %s has %q:\n%s", tt.supervisor, tt.mode, tt.file, w, got)
			}
		}
	}

	// In an unprivileged home qmail-popup runs as the home's account.
	o := Defaults()
	o.RunAs, o.SMTPMode, o.POP3Port = "nobody", ModeStandalone, 110
	files, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	if run := string(files["qmail-pop3d/run"]); !strings.Contains(run, "id -u nobody") || strings.Contains(run, "-user root") {
		t.Errorf("qmail-pop3d/run with RunAs:\n%s", run)
	}
}

// runService runs a rendered run script, as a supervisor would, and
// returns its merged output as it comes and a function that stops it with
// TERM and returns its exit status.
func runService(t *testing.T, script string, path string) (*bufio.Reader, func() error) {
	t.Helper()
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		return cmd.Wait()
	}
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return bufio.NewReader(out), stop
}

// netstring frames s as a netstring.
func netstring(s string) string { return strconv.Itoa(len(s)) + ":" + s + "," }

// TestQMTPServiceRuns renders the standalone QMTP run script for a test
// home, runs it, and delivers a message through it with QMTP; without
// the rules cdb the script refuses to start.
func TestQMTPServiceRuns(t *testing.T) {
	t.Parallel()
	testenv.Tool(t, "tcprules", "ucspi-tcp")
	home := testenv.NewHome(t, "qmail-qmtpd", "qmail-queue")
	testenv.WriteControl(t, home, "concurrencyincoming", "5\n")
	o := Defaults()
	o.Home, o.SMTPMode, o.Host, o.RunAs = home, ModeStandalone, "127.0.0.1", currentUser(t)
	o.QMTPPort = testenv.FreePort(t)
	o.QMTPRules = filepath.Join(home, "tcp.qmtp.cdb")
	files, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	script := string(files["qmail-qmtpd/run"])

	out, stop := runService(t, script, filepath.Join(home, "run-norules"))
	b, _ := io.ReadAll(out)
	if err := stop(); err == nil || !strings.Contains(string(b), "No "+o.QMTPRules+": write the rules") {
		t.Errorf("run without rules: %v\n%s", err, b)
	}

	testenv.TCPRules(t, o.QMTPRules, ":allow\n")
	out, stop = runService(t, script, filepath.Join(home, "run"))
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "qmail-qmtpd: listening on 127.0.0.1:"+strconv.Itoa(o.QMTPPort)) {
		b, _ := io.ReadAll(out)
		t.Fatalf("run script did not start the listener: %v %q%s", err, line, b)
	}
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(o.QMTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, netstring("\nSubject: service\n\nhello\n")+netstring("a@client.example")+netstring(netstring("u@"+testenv.Me)))
	reply := make([]byte, 100)
	n, _ := io.ReadAtLeast(conn, reply, 8)
	if !regexp.MustCompile(`^[0-9]+:Kok [0-9]+ qp [0-9]+,$`).Match(reply[:n]) {
		t.Errorf("QMTP reply %q", reply[:n])
	}
	conn.Close()
	if err := stop(); err != nil {
		t.Errorf("listener after TERM: %v", err)
	}
	todo, _ := filepath.Glob(filepath.Join(home, "queue", "todo", "*"))
	if len(todo) != 1 {
		t.Errorf("%d messages in todo, want 1", len(todo))
	}
}

// TestPOP3ServiceRuns renders the standalone POP3 run script for a test
// home and runs it: the greeting names control/me, and the login runs
// the configured checkpassword with qmail-pop3d and the maildir.
func TestPOP3ServiceRuns(t *testing.T) {
	t.Parallel()
	testenv.Tool(t, "tcprules", "ucspi-tcp")
	home := testenv.NewHome(t, "qmail-popup")
	testenv.WriteControl(t, home, "concurrencyincoming", "5\n")
	// A checkpassword that records its arguments and refuses everyone.
	fakeCP := filepath.Join(home, "bin", "fake-checkpassword")
	argsFile := filepath.Join(home, "cp-args")
	if err := os.WriteFile(fakeCP, []byte("#!/bin/sh\necho \"$@\" > "+argsFile+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	o := Defaults()
	o.Home, o.SMTPMode, o.Host, o.RunAs = home, ModeStandalone, "127.0.0.1", currentUser(t)
	o.POP3Port, o.POP3CheckPassword = testenv.FreePort(t), fakeCP
	o.POP3Rules = filepath.Join(home, "tcp.pop3.cdb")
	testenv.TCPRules(t, o.POP3Rules, ":allow\n")
	files, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	out, stop := runService(t, string(files["qmail-pop3d/run"]), filepath.Join(home, "run"))
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "qmail-popup: listening on 127.0.0.1:"+strconv.Itoa(o.POP3Port)) {
		b, _ := io.ReadAll(out)
		t.Fatalf("run script did not start the listener: %v %q%s", err, line, b)
	}
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(o.POP3Port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	greeting, _ := r.ReadString('\n')
	if !regexp.MustCompile(`^\+OK <[0-9]+\.[0-9]+@` + regexp.QuoteMeta(testenv.Me) + `>\r\n$`).MatchString(greeting) {
		t.Errorf("greeting %q", greeting)
	}
	io.WriteString(conn, "USER bob\r\nPASS secret\r\n")
	var replies []string
	for range 2 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", replies, err)
		}
		replies = append(replies, l)
	}
	if strings.Join(replies, "") != "+OK \r\n-ERR authorization failed\r\n" {
		t.Errorf("login replies %q", replies)
	}
	conn.Close()
	if err := stop(); err != nil {
		t.Errorf("listener after TERM: %v", err)
	}
	args, err := os.ReadFile(argsFile)
	if err != nil || string(args) != home+"/bin/qmail-pop3d ./Maildir/\n" {
		t.Errorf("checkpassword arguments %q (%v)", args, err)
	}
}
