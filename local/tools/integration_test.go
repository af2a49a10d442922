package tools_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

type result struct {
	stdout, stderr string
	code           int
}

// run runs a built tool with msg as a seekable stdin and env added.
func run(t *testing.T, name string, args []string, msg string, env ...string) result {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "msg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(msg)
	f.Seek(0, io.SeekStart)
	cmd := exec.Command(testenv.Program(t, name), args...)
	cmd.Stdin = f
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

func expect(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Errorf("got exit %d stdout %q stderr %q\nwant exit %d stdout %q stderr %q",
			r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

// captureQueue is the environment of a program that queues through a
// testenv.QueueCapture exiting with code.
func captureQueue(t *testing.T, code int) (env []string, cq *testenv.QueueCapture) {
	cq = testenv.CaptureQueue(t, code)
	return []string{"QMAILHOME=" + testenv.NewHome(t), "QMAILQUEUE=" + cq.Program}, cq
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const msg = "Subject: hi\n\nbody\n"

func TestForward(t *testing.T) {
	t.Parallel()
	env, cq := captureQueue(t, 0)
	r := run(t, "forward", []string{"a@x.example", "b@y.example"}, msg,
		append(env, "NEWSENDER=owner@list.example", "DTLINE=Delivered-To: list@list.example\n")...)
	expect(t, r, 0, "", "forward: qp "+cq.Single(t).Pid+"\n")
	if got := cq.Single(t).Message; got != "Delivered-To: list@list.example\n"+msg {
		t.Errorf("message %q", got)
	}
	if got := cq.Single(t).Envelope; got != "Fowner@list.example\x00Ta@x.example\x00Tb@y.example\x00\x00" {
		t.Errorf("envelope %q", got)
	}

	env, _ = captureQueue(t, 0)
	expect(t, run(t, "forward", []string{"a@x"}, msg, append(env, "DTLINE=x\n")...), 100, "", "forward: fatal: NEWSENDER not set\n")
	env, _ = captureQueue(t, 0)
	expect(t, run(t, "forward", []string{"a@x"}, msg, append(env, "NEWSENDER=x")...), 100, "", "forward: fatal: DTLINE not set\n")
	env, _ = captureQueue(t, 31)
	expect(t, run(t, "forward", []string{"a@x"}, msg, append(env, "NEWSENDER=x", "DTLINE=d\n")...), 100, "", "forward: fatal: mail server permanently rejected message (#5.3.0)\n")
	env, _ = captureQueue(t, 71)
	expect(t, run(t, "forward", []string{"a@x"}, msg, append(env, "NEWSENDER=x", "DTLINE=d\n")...), 111, "", "forward: fatal: mail server temporarily rejected message (#4.3.0)\n")
}

func TestCondredirect(t *testing.T) {
	t.Parallel()
	dt := "DTLINE=Delivered-To: bob@example.org\n"
	tests := []struct {
		prog   []string
		code   int
		stderr string
		queued bool
	}{
		// The program reads the message: condredirect must rewind.
		{[]string{"sh", "-c", "cat > /dev/null"}, 99, "", true},
		{[]string{"false"}, 0, "", false},
		{[]string{"sh", "-c", "exit 100"}, 0, "", false},
		{[]string{"sh", "-c", "exit 111"}, 111, "condredirect: fatal: temporary child error\n", false},
		{[]string{"sh", "-c", "kill -9 $$"}, 111, "condredirect: fatal: child crashed\n", false},
		{[]string{"/nonexistent/prog"}, 0, "", false},
	}
	for _, tt := range tests {
		env, cq := captureQueue(t, 0)
		r := run(t, "condredirect", append([]string{"new@x.example"}, tt.prog...), msg, append(env, "SENDER=s@x", dt)...)
		if tt.queued {
			expect(t, r, 99, "", "condredirect: qp "+cq.Single(t).Pid+"\n")
			if got := cq.Single(t).Message; got != "Delivered-To: bob@example.org\n"+msg {
				t.Errorf("message %q", got)
			}
			if got := cq.Single(t).Envelope; got != "Fs@x\x00Tnew@x.example\x00\x00" {
				t.Errorf("envelope %q", got)
			}
			continue
		}
		expect(t, r, tt.code, "", tt.stderr)
		if cq.Ran(t) {
			t.Errorf("%v: queued", tt.prog)
		}
	}
	expect(t, run(t, "condredirect", []string{"a@b"}, msg), 100, "", "condredirect: usage: condredirect newaddress program [ arg ... ]\n")
}

func TestBouncesayingAndExcept(t *testing.T) {
	t.Parallel()
	const text = "Sorry, this address is retired. (#5.1.1)"
	expect(t, run(t, "bouncesaying", []string{text}, msg), 100, "", text+"\n")
	expect(t, run(t, "bouncesaying", []string{text, "true"}, msg), 100, "", text+"\n")
	expect(t, run(t, "bouncesaying", []string{text, "false"}, msg), 0, "", "")
	expect(t, run(t, "bouncesaying", []string{text, "sh", "-c", "exit 111"}, msg), 111, "", "bouncesaying: fatal: temporary child error\n")
	expect(t, run(t, "bouncesaying", nil, msg), 100, "", "bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]\n")

	expect(t, run(t, "except", []string{"true"}, msg), 100, "", "")
	expect(t, run(t, "except", []string{"false"}, msg), 0, "", "")
	expect(t, run(t, "except", []string{"sh", "-c", "exit 111"}, msg), 111, "", "except: fatal: temporary child error\n")
	expect(t, run(t, "except", []string{"sh", "-c", "kill -9 $$"}, msg), 111, "", "except: fatal: child crashed\n")
	expect(t, run(t, "except", nil, msg), 100, "", "except: usage: except program [ arg ... ]\n")
	// except turns bouncesaying's bounce into success, a common idiom.
	expect(t, run(t, "except", []string{testenv.Program(t, "bouncesaying"), "no"}, msg), 0, "", "no\n")
}

func TestPreline(t *testing.T) {
	t.Parallel()
	env := []string{"UFLINE=From s@x Thu Jan 01 00:00:00 2026\n", "RPLINE=Return-Path: <s@x>\n", "DTLINE=Delivered-To: b@y\n"}
	all := "From s@x Thu Jan 01 00:00:00 2026\nReturn-Path: <s@x>\nDelivered-To: b@y\n"
	expect(t, run(t, "preline", []string{"cat"}, msg, env...), 0, all+msg, "")
	expect(t, run(t, "preline", []string{"-f", "cat"}, msg, env...), 0, "Return-Path: <s@x>\nDelivered-To: b@y\n"+msg, "")
	expect(t, run(t, "preline", []string{"-frd", "cat"}, msg, env...), 0, msg, "")
	expect(t, run(t, "preline", []string{"-fd", "-F", "cat"}, msg, env...), 0, "From s@x Thu Jan 01 00:00:00 2026\nReturn-Path: <s@x>\n"+msg, "")
	expect(t, run(t, "preline", []string{"sh", "-c", "cat; exit 7"}, msg, env...), 7, all+msg, "")
	expect(t, run(t, "preline", []string{"cat"}, msg, env[:2]...), 100, "", "preline: usage: preline cmd [ arg ... ]\n")
	expect(t, run(t, "preline", nil, msg, env...), 100, "", "preline: usage: preline cmd [ arg ... ]\n")
	expect(t, run(t, "preline", []string{"/nonexistent"}, msg, env...), 100, "", "preline: fatal: unable to run /nonexistent: file does not exist\n")
}

var dateLine = regexp.MustCompile(`^Date: [1-9][0-9]? (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [+-][0-9]{4}\n`)

func TestPredate(t *testing.T) {
	t.Parallel()
	r := run(t, "predate", []string{"sh", "-c", "cat; exit 3"}, msg, "TZ=Asia/Kolkata")
	if r.code != 3 || !dateLine.MatchString(r.stdout) || !strings.HasSuffix(r.stdout, "+0530\n"+msg) {
		t.Errorf("got %+v", r)
	}
	expect(t, run(t, "predate", nil, msg), 100, "", "predate: usage: predate child\n")
}

func TestMaildirmake(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Maildir")
	expect(t, run(t, "maildirmake", []string{dir}, ""), 0, "", "")
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		st, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s/%s: %v %v", dir, sub, st, err)
		}
	}
	expect(t, run(t, "maildirmake", []string{dir}, ""), 111, "", "maildirmake: fatal: unable to mkdir "+dir+": file already exists\n")
	expect(t, run(t, "maildirmake", nil, ""), 100, "", "maildirmake: usage: maildirmake name\n")
}

// A maildir filled by qmail-local, emptied into an mbox by maildir2mbox.
func TestMaildir2mbox(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	os.Chmod(home, 0o755)
	expect(t, run(t, "maildirmake", []string{filepath.Join(home, "Maildir")}, ""), 0, "", "")
	os.WriteFile(filepath.Join(home, ".qmail"), []byte("./Maildir/\n"), 0o644)
	for i, sender := range []string{"a b@x.example", ""} {
		r := run(t, "qmail-local", []string{"bob", home, "bob", "", "", "example.org", sender, "./Mailbox"},
			fmt.Sprintf("Subject: %d\n\nFrom here\nno newline", i))
		expect(t, r, 0, "did 1+0+0\n", "")
	}
	// maildir2mbox takes only messages older than its start; age them,
	// the first one more.
	entries, _ := os.ReadDir(filepath.Join(home, "Maildir/new"))
	for _, e := range entries {
		p := filepath.Join(home, "Maildir/new", e.Name())
		age := 20 * time.Second
		if strings.Contains(readFile(t, p), "Subject: 0") {
			age = 40 * time.Second
		}
		old := time.Now().Add(-age)
		os.Chtimes(p, old, old)
	}
	mbox := filepath.Join(home, "mbox")
	os.WriteFile(mbox, []byte("From old Mon Jan 05 00:00:00 2026\n\nold\n\n"), 0o600)
	env := []string{"MAILDIR=" + filepath.Join(home, "Maildir"), "MAIL=" + mbox, "MAILTMP=" + mbox + ".tmp"}
	expect(t, run(t, "maildir2mbox", nil, "", env...), 0, "", "")
	got := readFile(t, mbox)
	want := regexp.MustCompile(`^From old Mon Jan 05 00:00:00 2026\n\nold\n\n` +
		`From "a-b"@x.example [A-Z][a-z]{2} [A-Z][a-z]{2} [0-9]{2} [0-9:]{8} [0-9]{4}\n` +
		`Return-Path: <"a b"@x.example>\nDelivered-To: bob@example.org\nSubject: 0\n\n>From here\nno newline\n\n` +
		`From MAILER-DAEMON [A-Z][a-z]{2} [A-Z][a-z]{2} [0-9]{2} [0-9:]{8} [0-9]{4}\n` +
		`Return-Path: <>\nDelivered-To: bob@example.org\nSubject: 1\n\n>From here\nno newline\n\n$`)
	if !want.MatchString(got) {
		t.Errorf("mbox:\n%s", got)
	}
	if left, _ := os.ReadDir(filepath.Join(home, "Maildir/new")); len(left) != 0 {
		t.Errorf("messages left in the maildir: %v", left)
	}
	if _, err := os.Stat(mbox + ".tmp"); err == nil {
		t.Error("MAILTMP left behind")
	}
	// Nothing to do is success, and the mbox stays as it is.
	expect(t, run(t, "maildir2mbox", nil, "", env...), 0, "", "")
	if readFile(t, mbox) != got {
		t.Error("mbox changed without new mail")
	}
	expect(t, run(t, "maildir2mbox", nil, "", env[1:]...), 111, "", "maildir2mbox: fatal: MAILDIR not set\n")
}

func TestMailsubjAndDatemail(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "predate")
	capture := filepath.Join(home, "captured")
	for _, name := range []string{"qmail-inject", "sendmail"} {
		script := fmt.Sprintf("#!/bin/sh\necho \"$0 $*\" > %s.%s.args\ncat > %s.%s\n", capture, name, capture, name)
		if err := os.WriteFile(filepath.Join(home, "bin", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := "QMAILHOME=" + home
	expect(t, run(t, "mailsubj", []string{"the subject", "a@x", "b@y"}, "text\n", env), 0, "", "")
	if got := readFile(t, capture+".qmail-inject"); got != "Subject: the subject\nTo: a@x b@y\n\ntext\n" {
		t.Errorf("mailsubj gave qmail-inject %q", got)
	}
	expect(t, run(t, "datemail", []string{"-t", "x@y"}, "Subject: s\n\nb\n", env), 0, "", "")
	if got := readFile(t, capture+".sendmail"); !dateLine.MatchString(got) || !strings.HasSuffix(got, "\nSubject: s\n\nb\n") {
		t.Errorf("datemail gave sendmail %q", got)
	}
	if got := readFile(t, capture+".sendmail.args"); got != filepath.Join(home, "bin", "sendmail")+" -t x@y\n" {
		t.Errorf("sendmail args %q", got)
	}
}

func TestQreceipt(t *testing.T) {
	t.Parallel()
	request := "Message-ID: <123@x>\nNotice-Requested-Upon-Delivery-To: Joe <joe@nowhere.mil>,\n ann@x\nSubject: s\n\nbody\n"
	env, cq := captureQueue(t, 0)
	expect(t, run(t, "qreceipt", []string{"joe@nowhere.mil"}, request, append(env, "SENDER=a b@c.example")...), 0, "", "")
	want := "From: DELIVERY NOTICE SYSTEM <\"a b\"@c.example>\nTo: <\"a b\"@c.example>\nSubject: success notice\n\n" +
		"Hi! This is the qreceipt program. Your message was delivered to the\nfollowing address: joe@nowhere.mil. Thanks for asking.\n" +
		"Your Message-ID: <123@x>\n"
	if got := cq.Single(t).Message; got != want {
		t.Errorf("notice %q, want %q", got, want)
	}
	if got := cq.Single(t).Envelope; got != "F\x00Ta b@c.example\x00\x00" {
		t.Errorf("envelope %q", got)
	}
	for _, tt := range []struct{ target, sender string }{
		{"other@x", "s@x"},          // not requested for this address
		{"joe@nowhere.mil", ""},     // a bounce
		{"joe@nowhere.mil", "#@[]"}, // a double bounce
	} {
		env, cq := captureQueue(t, 0)
		expect(t, run(t, "qreceipt", []string{tt.target}, request, append(env, "SENDER="+tt.sender)...), 0, "", "")
		if cq.Ran(t) {
			t.Errorf("%+v: notice sent", tt)
		}
	}
	expect(t, run(t, "qreceipt", nil, request), 100, "", "qreceipt: usage: qreceipt deliveryaddress\n")
}
