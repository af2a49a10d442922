package inject

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

// run runs a program of home/bin with exactly the environment env.
func run(t *testing.T, home, prog string, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", prog), args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "QMAILHOME=" + home}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

const stamped = "Date: 1 Jan 2000 00:00:00 -0000\nMessage-ID: <m@x>\n"

func TestInjectQueues(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-inject")
	for _, tc := range []struct {
		name     string
		env      []string
		args     []string
		in       string
		message  string
		envelope string
	}{
		{
			name:     "header recipients",
			env:      []string{"USER=joe", "NAME=Joe User"},
			in:       stamped + "To: a, b@x.example\nCc: c@y.example\nBcc: hidden\nSubject: hi\n\nbody\n",
			message:  "From: \"Joe User\" <joe@testhost.example>\n" + stamped + "To: a@testhost.example, b@x.example\nCc: c@y.example\nSubject: hi\n\nbody\n",
			envelope: "Fjoe@testhost.example\x00Tb@x.example\x00Ta@testhost.example\x00Tc@y.example\x00Thidden@testhost.example\x00\x00",
		},
		{
			name:     "arguments only by default when given",
			env:      []string{"USER=joe"},
			args:     []string{"r1", "r2@z.example"},
			in:       stamped + "To: a\n\nbody",
			message:  "From: joe@testhost.example\n" + stamped + "To: a@testhost.example\n\nbody\n",
			envelope: "Fjoe@testhost.example\x00Tr1@testhost.example\x00Tr2@z.example\x00\x00",
		},
		{
			name:     "-H: both",
			env:      []string{"USER=joe"},
			args:     []string{"-H", "r1"},
			in:       stamped + "To: a\n\n",
			message:  "From: joe@testhost.example\n" + stamped + "To: a@testhost.example\n\n",
			envelope: "Fjoe@testhost.example\x00Tr1@testhost.example\x00Ta@testhost.example\x00\x00",
		},
		{
			name:     "-h: header only",
			env:      []string{"USER=joe"},
			args:     []string{"-h", "r1"},
			in:       stamped + "To: a\n\n",
			message:  "From: joe@testhost.example\n" + stamped + "To: a@testhost.example\n\n",
			envelope: "Fjoe@testhost.example\x00Ta@testhost.example\x00\x00",
		},
		{
			name:     "resent: Resent- recipients only",
			env:      []string{"USER=joe"},
			in:       "From: o@x.example\nTo: old@x.example\nResent-To: new@x.example\nResent-Bcc: hid@x.example\nResent-Date: d\nResent-Message-ID: <r@x>\n\n",
			message:  "Resent-From: joe@testhost.example\nFrom: o@x.example\nTo: old@x.example\nResent-To: new@x.example\nResent-Date: d\nResent-Message-ID: <r@x>\n\n",
			envelope: "Fjoe@testhost.example\x00Tnew@x.example\x00Thid@x.example\x00\x00",
		},
		{
			name:     "sender from Return-Path, -f wins",
			env:      []string{"USER=joe"},
			args:     []string{"-f", "bounce@b.example", "r@x.example"},
			in:       stamped + "Return-Path: <rp@x.example>\nTo: t\n\n",
			message:  "From: joe@testhost.example\n" + stamped + "To: t@testhost.example\n\n",
			envelope: "Fbounce@b.example\x00Tr@x.example\x00\x00",
		},
		{
			name:     "per-recipient VERP sender",
			env:      []string{"USER=joe", "QMAILINJECT=r", "QMAILSUSER=list", "QMAILSHOST=lists.example"},
			in:       stamped + "To: a@x.example\n\n",
			message:  "From: joe@testhost.example\n" + stamped + "To: a@x.example\n\n",
			envelope: "Flist-@lists.example-@[]\x00Ta@x.example\x00\x00",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qq := testenv.CaptureQueue(t, 0)
			_, stderr, code := run(t, home, "qmail-inject", append(tc.env, "QMAILQUEUE="+qq.Program), tc.in, tc.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			msg, env := qq.Only(t)
			if msg != tc.message {
				t.Errorf("message:\n got %q\nwant %q", msg, tc.message)
			}
			if env != tc.envelope {
				t.Errorf("envelope:\n got %q\nwant %q", env, tc.envelope)
			}
		})
	}
}

func TestInjectQueueErrors(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-inject")
	for _, tc := range []struct {
		exit   int
		code   int
		stderr string
	}{
		{0, 0, ""},
		{11, 100, "qmail-inject: fatal: envelope address too long for qq (#5.1.3)\n"},
		{31, 100, "qmail-inject: fatal: mail server permanently rejected message (#5.3.0)\n"},
		{12, 100, "qmail-inject: fatal: qq permanent problem (#5.3.0)\n"},
		{53, 111, "qmail-inject: fatal: qq write error or disk full (#4.3.0)\n"},
		{91, 111, "qmail-inject: fatal: qq internal bug (#4.3.0)\n"},
		{75, 111, "qmail-inject: fatal: qq temporary problem (#4.3.0)\n"},
	} {
		t.Run(fmt.Sprint(tc.exit), func(t *testing.T) {
			qq := testenv.CaptureQueue(t, tc.exit)
			_, stderr, code := run(t, home, "qmail-inject", []string{"USER=joe", "QMAILQUEUE=" + qq.Program}, "To: a\n\nbody\n")
			if code != tc.code || stderr != tc.stderr {
				t.Errorf("exit %d %q, want %d %q", code, stderr, tc.code, tc.stderr)
			}
		})
	}
	t.Run("no queue program", func(t *testing.T) {
		_, stderr, code := run(t, home, "qmail-inject", []string{"USER=joe", "QMAILQUEUE=/nonexistent/qq"}, "To: a\n\nbody\n")
		if code != 111 || stderr != "qmail-inject: fatal: unable to exec qq (#4.3.0)\n" {
			t.Errorf("exit %d %q", code, stderr)
		}
	})
	t.Run("syntax error queues nothing", func(t *testing.T) {
		qq := testenv.CaptureQueue(t, 0)
		_, stderr, code := run(t, home, "qmail-inject", []string{"USER=joe", "QMAILQUEUE=" + qq.Program}, "To: \"open\n\nbody\n")
		if code != 100 || stderr != "qmail-inject: fatal: unable to parse this line:\nTo: \"open\n" {
			t.Errorf("exit %d %q", code, stderr)
		}
		if qq.Ran(t) {
			t.Error("the queue program ran")
		}
	})
	t.Run("usage", func(t *testing.T) {
		_, stderr, code := run(t, home, "qmail-inject", []string{"USER=joe"}, "", "-Z")
		if code != 100 || stderr != "qmail-inject: illegal option -- Z\n" {
			t.Errorf("exit %d %q", code, stderr)
		}
	})
}

func TestInjectStreamsLargeBody(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-inject")
	qq := testenv.CaptureQueue(t, 0)
	body := strings.Repeat("0123456789abcdef", 1<<20) // 16 MiB, one line, no final newline
	_, stderr, code := run(t, home, "qmail-inject", []string{"USER=joe", "QMAILQUEUE=" + qq.Program}, stamped+"To: a@x.example\n\n"+body)
	if code != 0 {
		t.Fatalf("exit %d %q", code, stderr)
	}
	msg, _ := qq.Only(t)
	if want := "From: joe@testhost.example\n" + stamped + "To: a@x.example\n\n" + body + "\n"; msg != want {
		t.Errorf("message of %d bytes, want %d", len(msg), len(want))
	}
}

func TestSendmailRunsInject(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-inject", "sendmail")
	for _, tc := range []struct {
		name     string
		args     []string
		env      []string
		in       string
		message  string
		envelope string
	}{
		{
			name:     "-t -f -i",
			args:     []string{"-t", "-i", "-f", "sender@s.example", "extra@e.example"},
			env:      []string{"USER=joe", "NAME=Ignored"},
			in:       stamped + "To: a@x.example\nSubject: s\n\n.\nbody\n",
			message:  "From: sender@s.example\n" + stamped + "To: a@x.example\nSubject: s\n\n.\nbody\n",
			envelope: "Fsender@s.example\x00Textra@e.example\x00Ta@x.example\x00\x00",
		},
		{
			name:     "recipients from arguments, -F name",
			args:     []string{"-oi", "-F", "Joe User", "r@x.example"},
			env:      []string{"USER=joe"},
			in:       stamped + "To: header@x.example\n\nbody\n",
			message:  "From: \"Joe User\" <joe@testhost.example>\n" + stamped + "To: header@x.example\n\nbody\n",
			envelope: "Fjoe@testhost.example\x00Tr@x.example\x00\x00",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			qq := testenv.CaptureQueue(t, 0)
			_, stderr, code := run(t, home, "sendmail", append(tc.env, "QMAILQUEUE="+qq.Program), tc.in, tc.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			msg, env := qq.Only(t)
			if msg != tc.message {
				t.Errorf("message:\n got %q\nwant %q", msg, tc.message)
			}
			if env != tc.envelope {
				t.Errorf("envelope:\n got %q\nwant %q", env, tc.envelope)
			}
		})
	}
	t.Run("queue failure passes through", func(t *testing.T) {
		qq := testenv.CaptureQueue(t, 53)
		_, stderr, code := run(t, home, "sendmail", []string{"USER=joe", "QMAILQUEUE=" + qq.Program}, "To: a\n\n", "r")
		if code != 111 || stderr != "qmail-inject: fatal: qq write error or disk full (#4.3.0)\n" {
			t.Errorf("exit %d %q", code, stderr)
		}
	})
	t.Run("usage", func(t *testing.T) {
		_, stderr, code := run(t, home, "sendmail", nil, "", "-q")
		if code != 100 || stderr != "sendmail: illegal option -- q\n"+sendmailUsage {
			t.Errorf("exit %d %q", code, stderr)
		}
	})
	t.Run("newaliases", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "newaliases")
		if err := os.Symlink(filepath.Join(home, "bin", "sendmail"), link); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(link)
		cmd.Env = []string{"QMAILHOME=" + home}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 100 || string(out) != "sendmail: fatal: please use fastforward/newaliases instead\n" {
			t.Errorf("%v %q", err, out)
		}
	})
}

// TestSendmailMailq checks that -bp and the name mailq run bin/qmail-qread
// in the qmail home.
func TestSendmailMailq(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "sendmail")
	qread := "#!/bin/sh\necho \"qread $0 $# $(pwd)\"\n"
	if err := os.WriteFile(filepath.Join(home, "bin", "qmail-qread"), []byte(qread), 0o755); err != nil {
		t.Fatal(err)
	}
	want := "qread bin/qmail-qread 0 " + home + "\n"
	out, stderr, code := run(t, home, "sendmail", nil, "", "-bp")
	if out != want || code != 0 {
		t.Errorf("-bp: %q %q %d, want %q", out, stderr, code, want)
	}
	if err := os.Symlink("sendmail", filepath.Join(home, "bin", "mailq")); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = run(t, home, "mailq", nil, "")
	if out != want || code != 0 {
		t.Errorf("mailq: %q %q %d, want %q", out, stderr, code, want)
	}
}

// TestSendmailSMTP drives sendmail -bs with swaks: the session runs the
// real qmail-smtpd with sendmail's local environment.
func TestSendmailSMTP(t *testing.T) {
	t.Parallel()
	swaks := testenv.Tool(t, "swaks", "swaks")
	home := testenv.NewHome(t, "sendmail", "qmail-smtpd")
	qq := testenv.CaptureQueue(t, 0)
	cmd := exec.Command(swaks, "--pipe", filepath.Join(home, "bin", "sendmail")+" -bs",
		"--from", "joe@testhost.example", "--to", "someone@elsewhere.example",
		"--helo", "client.example", "--header", "Subject: via -bs", "--body", "hello")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "QMAILHOME=" + home, "QMAILQUEUE=" + qq.Program}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	msg, env := qq.Only(t)
	// Relaying is allowed: RELAYCLIENT is set, and the recipient is not local.
	if want := "Fjoe@testhost.example\x00Tsomeone@elsewhere.example\x00\x00"; env != want {
		t.Errorf("envelope %q, want %q", env, want)
	}
	if !strings.Contains(msg, "Subject: via -bs\n") || !strings.Contains(msg, "(HELO client.example) (sendmail-bs@127.0.0.1)") {
		t.Errorf("message %q", msg)
	}
}

// TestSendmailRealQueue injects through sendmail, qmail-inject and the
// real qmail-queue, then reads the queue.
func TestSendmailRealQueue(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue", "qmail-inject", "sendmail")
	in := stamped + "To: a@x.example\nSubject: real queue\n\nbody\n"
	_, stderr, code := run(t, home, "sendmail", []string{"USER=joe"}, in, "-t", "-f", "s@y.example")
	if code != 0 {
		t.Fatalf("exit %d %q", code, stderr)
	}
	todo, err := os.ReadDir(filepath.Join(home, "queue", "todo"))
	if err != nil || len(todo) != 1 {
		t.Fatalf("queue/todo: %v %v", todo, err)
	}
	id := todo[0].Name()
	f, err := os.Open(filepath.Join(home, "queue", "todo", id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []string
	rr := queue.NewRecordReader(f, queue.MaxAddr)
	for {
		r, err := rr.Next()
		if err != nil {
			break
		}
		if r.Type == 'F' || r.Type == 'T' {
			recs = append(recs, string(r.Type)+r.Text)
		}
	}
	if got, want := strings.Join(recs, " "), "Fs@y.example Ta@x.example"; got != want {
		t.Errorf("envelope %q, want %q", got, want)
	}
	var n int
	fmt.Sscan(id, &n)
	mess, err := os.ReadFile(filepath.Join(home, "queue", "mess", fmt.Sprint(n%queue.Split), id))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^Received: \(qmail [0-9]+ invoked by uid [0-9]+\); [0-9]+ [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} -0000\n`)
	loc := re.FindIndex(mess)
	if loc == nil {
		t.Fatalf("no Received line: %q", mess)
	}
	want := "From: s@y.example\n" + in
	if got := string(mess[loc[1]:]); got != want {
		t.Errorf("queued message:\n got %q\nwant %q", got, want)
	}
}
