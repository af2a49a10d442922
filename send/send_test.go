package send_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsend"
)

func TestLocalDelivery(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	bob := testsend.AliasMaildir(t, home, "bob", "bob")
	virt := testsend.AliasMaildir(t, home, "vbox-default", "vbox")
	testenv.WriteControl(t, home, "virtualdomains", "virt.example:vbox\n")
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	m.WaitLines(`^status: local 0/10 remote 0/20$`, 1)

	msg := "Subject: hello\n\nbody\n"
	enqueue(t, home, attr, msg, "alice@example.org", "bob")
	end := m.WaitLines(`^end msg \d+$`, 1)[0]
	id := strings.TrimPrefix(end, "end msg ")
	want := []string{
		`^new msg ` + id + `$`,
		`^info msg ` + id + `: bytes \d+ from <alice@example.org> qp \d+ uid \d+$`,
		`^starting delivery 1: msg ` + id + ` to local bob@testhost.example$`,
		`^status: local 1/10 remote 0/20$`,
		`^delivery 1: success: did_1\+0\+0/$`,
		`^status: local 0/10 remote 0/20$`,
		`^end msg ` + id + `$`,
	}
	lines := m.Lines()
	i := 0
	for _, l := range lines {
		if i < len(want) && regexp.MustCompile(want[i]).MatchString(l) {
			i++
		}
	}
	must(t, i == len(want), "log lacks %q in order:\n%s", want[min(i, len(want)-1)], strings.Join(lines, "\n"))

	got := testsend.MaildirMessages(t, bob)
	must(t, len(got) == 1, "bob's maildir has %d messages", len(got))
	must(t, strings.HasPrefix(got[0], "Return-Path: <alice@example.org>\nDelivered-To: bob@testhost.example\nReceived: "),
		"delivered message: %q", got[0])
	must(t, strings.HasSuffix(got[0], msg), "delivered message: %q", got[0])

	// A virtual domain: the prepend makes a local address.
	enqueue(t, home, attr, msg, "alice@example.org", "Carol@Virt.Example")
	m.WaitLines(`^starting delivery 2: msg \d+ to local vbox-Carol@Virt.Example$`, 1)
	m.WaitLines(`^end msg \d+$`, 2)
	must(t, len(testsend.MaildirMessages(t, virt)) == 1, "vbox maildir is empty")
	m.Stop()
	testsend.QueueEmpty(t, home)
}

func TestUnknownUserBounces(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	enqueue(t, home, attr, "Subject: lost\n\nhello\n", "alice@example.org", "nosuch@testhost.example")
	m.WaitLines(`^delivery 1: failure: Sorry,_no_mailbox_here_by_that_name._\(#5.1.1\)/$`, 1)
	m.WaitLines(`^bounce msg \d+ qp \d+$`, 1)
	m.WaitLines(`^starting delivery 2: msg \d+ to remote alice@example.org$`, 1)
	m.WaitLines(`^delivery 2: success: 1.2.3.4_accepted_message./Remote_host_said:_250_ok/$`, 1)
	m.WaitLines(`^end msg \d+$`, 2)
	m.Stop()
	testsend.QueueEmpty(t, home)

	out := testsend.RemoteOut(t, home)
	must(t, len(out) == 1, "%d remote deliveries", len(out))
	head, body, _ := strings.Cut(out[0], "\nReceived: ")
	must(t, head == "example.org\n\nalice@example.org", "qmail-remote arguments %q", head)
	_, bounce, _ := strings.Cut(body, "\nDate: ")
	wantRE := regexp.MustCompile(`^\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d -0000\n` +
		regexp.QuoteMeta("From: MAILER-DAEMON@testhost.example\n"+
			"To: alice@example.org\n"+
			"Subject: failure notice\n"+
			"\n"+
			"Hi. This is the qmail-send program at testhost.example.\n"+
			"I'm afraid I wasn't able to deliver your message to the following addresses.\n"+
			"This is a permanent error; I've given up. Sorry it didn't work out.\n"+
			"\n"+
			"<nosuch@testhost.example>:\n"+
			"Sorry, no mailbox here by that name. (#5.1.1)\n"+
			"\n"+
			"--- Below this line is a copy of the message.\n"+
			"\n"+
			"Return-Path: <alice@example.org>\n"+
			"Received: ") + `[^\n]*\n` + regexp.QuoteMeta("Subject: lost\n\nhello\n") + `$`)
	must(t, wantRE.MatchString(bounce), "bounce:\n%s", bounce)
}

func TestDoubleAndTripleBounce(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	pm := testsend.AliasMaildir(t, home, "postmaster", "pm")
	testenv.WriteControl(t, home, "bouncefrom", "bouncer\n")
	testenv.WriteControl(t, home, "bouncehost", "bounces.example\n")
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	enqueue(t, home, attr, "Subject: orphan\n\nhi\n", "", "nosuch@testhost.example")
	m.WaitLines(`^bounce msg \d+ qp \d+$`, 1)
	m.WaitLines(`^starting delivery 2: msg \d+ to local postmaster@testhost.example$`, 1)
	m.WaitLines(`^end msg \d+$`, 2)

	got := testsend.MaildirMessages(t, pm)
	must(t, len(got) == 1, "postmaster got %d messages", len(got))
	for _, want := range []string{
		"Return-Path: <#@[]>\n",
		"From: bouncer@bounces.example\nTo: postmaster@testhost.example\nSubject: failure notice\n\n" +
			"Hi. This is the qmail-send program at bounces.example.\n" +
			"I tried to deliver a bounce message to this address, but the bounce bounced!\n\n" +
			"<nosuch@testhost.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n" +
			"--- Below this line is the original bounce.\n\nReturn-Path: <>\nReceived: ",
	} {
		must(t, strings.Contains(got[0], want), "double bounce lacks %q:\n%s", want, got[0])
	}

	// A failure of a double bounce is discarded.
	enqueue(t, home, attr, "Subject: triple\n\nhi\n", "#@[]", "nosuch@testhost.example")
	m.WaitLines(`^triple bounce: discarding bounce/\d+$`, 1)
	m.WaitLines(`^end msg \d+$`, 3)
	m.Stop()
	testsend.QueueEmpty(t, home)
}

func TestLoopBounces(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	testsend.AliasMaildir(t, home, "bob", "bob")
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	msg := strings.Repeat("Delivered-To: bob@testhost.example\n", 100) + "Subject: loop\n\nround and round\n"
	enqueue(t, home, attr, msg, "alice@example.org", "bob@testhost.example")
	m.WaitLines(`^delivery 1: failure: This_message_is_looping:_it_already_has_my_Delivered-To_line._\(#5.4.6\)/$`, 1)
	m.WaitLines(`^bounce msg \d+ qp \d+$`, 1)
	m.WaitLines(`^end msg \d+$`, 2)
	m.Stop()
	out := testsend.RemoteOut(t, home)
	must(t, len(out) == 1 && strings.Contains(out[0], "<bob@testhost.example>:\nThis message is looping"), "bounce: %q", out)
}

func TestRetryAndExpiry(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	writeFile(t, filepath.Join(home, "alias", ".qmail-flaky"), "|echo not now; exit 111\n", 0o600)
	testsend.AliasMaildir(t, home, "bob", "bob")
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	enqueue(t, home, attr, "Subject: retry\n\nagain\n", "alice@example.org", "bob@testhost.example", "flaky@testhost.example")
	m.WaitLines(`^delivery 1: success: did_1\+0\+0/$`, 1)
	m.WaitLines(`^delivery 2: deferral: not_now/$`, 1)
	// ALRM: the retry happens now instead of in 100 seconds.
	m.Signal(syscall.SIGALRM)
	m.WaitLines(`^starting delivery 3: msg \d+ to local flaky@testhost.example$`, 1)
	m.WaitLines(`^delivery 3: deferral: not_now/$`, 1)
	m.Stop()
	must(t, len(m.WaitLines(`^starting delivery \d+: msg \d+ to local bob@`, 1)) == 1, "bob's delivery was repeated")

	// After TERM the channel file carries the next retry time.
	// The delivered recipient is marked done in place.
	local, next := onlyQueueFile(t, home, "local")
	must(t, local == "Dbob@testhost.example\x00Tflaky@testhost.example\x00", "local file %q", local)
	must(t, next.After(time.Now()), "next retry %v is not in the future", next)
	_, birth := onlyQueueFile(t, home, "info")
	must(t, next.Sub(birth) >= 99*time.Second, "retry %v too close to birth %v", next, birth)

	// A restart with a lifetime the message has outlived: the next
	// attempt is the last one, and its deferral becomes a failure.
	testenv.WriteControl(t, home, "queuelifetime", "1\n")
	for time.Since(birth) <= 2*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	m = start(t, home, attr)
	m.WaitLines(`^status: local 0/10 remote 0/20$`, 1)
	m.Signal(syscall.SIGALRM)
	m.WaitLines(`^starting delivery 1: msg \d+ to local flaky@testhost.example$`, 1)
	m.WaitLines(`^delivery 1: failure: not_now/I'm_not_going_to_try_again;_this_message_has_been_in_the_queue_too_long./$`, 1)
	m.WaitLines(`^bounce msg \d+ qp \d+$`, 1)
	m.WaitLines(`^end msg \d+$`, 2)
	m.Stop()
	testsend.QueueEmpty(t, home)
	out := testsend.RemoteOut(t, home)
	must(t, len(out) == 1 && strings.Contains(out[0],
		"<flaky@testhost.example>:\nnot now\nI'm not going to try again; this message has been in the queue too long.\n\n--- Below"),
		"bounce: %q", out)
}

func TestSecondSendRefuses(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	m.WaitLines(`^status: local 0/10 remote 0/20$`, 1)
	second := start(t, home, attr)
	second.WaitLines(`^alert: cannot start: qmail-send is already running$`, 1)
	err := second.Cmd.Wait()
	ee, ok := err.(interface{ ExitCode() int })
	must(t, ok && ee.ExitCode() == 111, "second qmail-send: %v", err)
	m.Stop()
}

func TestCrashRestart(t *testing.T) {
	t.Parallel()
	const n = 300
	home := newHome(t)
	box := testsend.AliasMaildir(t, home, "many", "many")
	attr := testsend.RunAs(t, home)
	for i := 0; i < n; i++ {
		to := "many@testhost.example"
		if i%3 == 0 {
			to = "far@remote.example"
		}
		enqueue(t, home, attr, fmt.Sprintf("Subject: number %d\n\n%d\n", i, i), "alice@example.org", to)
	}
	m := start(t, home, attr)
	m.WaitLines(`^delivery \d+: success`, n/4)
	m.Signal(syscall.SIGKILL)
	m.Cmd.Wait()

	m = start(t, home, attr)
	deadline := time.Now().Add(testsend.WaitLimit)
	for {
		// A crash between "end msg" and qmail-clean's removal of the
		// message leaves mess/N alone, for the 36-hour sweep, as in
		// qmail; what counts is that nothing is left to deliver.
		msgs, _ := filepath.Glob(filepath.Join(home, "queue", "info", "*", "*"))
		todo, _ := filepath.Glob(filepath.Join(home, "queue", "todo", "*"))
		msgs = append(msgs, todo...)
		if len(msgs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued:\n%s", len(msgs), strings.Join(m.Lines(), "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.Stop()
	seen := map[string]bool{}
	for _, f := range append(testsend.MaildirMessages(t, box), testsend.RemoteOut(t, home)...) {
		_, rest, ok := strings.Cut(f, "Subject: number ")
		if ok {
			num, _, _ := strings.Cut(rest, "\n")
			seen[num] = true
		}
	}
	for i := 0; i < n; i++ {
		if !seen[fmt.Sprint(i)] {
			t.Errorf("message %d was lost", i)
		}
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	writeFile(t, filepath.Join(home, "alias", ".qmail-slow"), "|sleep 0.1\n", 0o600)
	testenv.WriteControl(t, home, "concurrencylocal", "2\n")
	testenv.WriteControl(t, home, "concurrencyremote", "500\n") // capped by the spawner's 120
	attr := testsend.RunAs(t, home)
	for i := 0; i < 6; i++ {
		enqueue(t, home, attr, "Subject: slow\n\n", "alice@example.org", "slow@testhost.example")
	}
	m := start(t, home, attr)
	m.WaitLines(`^end msg \d+$`, 6)
	m.Stop()
	busy := false
	for _, l := range m.Lines() {
		if strings.HasPrefix(l, "status: local 3/") {
			t.Errorf("more deliveries than concurrencylocal: %q", l)
		}
		if strings.HasPrefix(l, "status: ") && l != "status: exiting" && !strings.HasSuffix(l, "/2 remote 0/120") {
			t.Errorf("status line %q: want local limit 2, remote limit 120", l)
		}
		busy = busy || l == "status: local 2/2 remote 0/120"
	}
	must(t, busy, "the two local slots were never used together")
}

func TestLogger(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	testsend.AliasMaildir(t, home, "bob", "bob")
	attr := testsend.RunAs(t, home)
	logFile := filepath.Join(home, "send.log")
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-start"), "./Maildir/", "sh", "-c", `exec cat >"$QMAILHOME/send.log"`)
	cmd.Env = env(home)
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	enqueue(t, home, attr, "Subject: logged\n\n", "alice@example.org", "bob@testhost.example")
	deadline := time.Now().Add(testsend.WaitLimit)
	for {
		b, _ := os.ReadFile(logFile)
		if strings.Contains(string(b), "\nend msg ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the logger got:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("qmail-send: %v", err)
	}
	b, _ := os.ReadFile(logFile)
	must(t, strings.HasPrefix(string(b), "status: local 0/10 remote 0/20\n"), "log: %q", b)
}

// TestDirectDeferralSurvivesRestart: a one-recipient message is delivered
// straight from todo/ (send/direct.go); its deferral leaves the files
// preprocessing would have written, with the retry time, todo/N gone,
// and a restarted qmail-send takes the message up from them.
func TestDirectDeferralSurvivesRestart(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	writeFile(t, filepath.Join(home, "alias", ".qmail-flaky"), "|echo not now; exit 111\n", 0o600)
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	enqueue(t, home, attr, "Subject: direct\n\nlater\n", "alice@example.org", "flaky@testhost.example")
	m.WaitLines(`^delivery 1: deferral: not_now/$`, 1)
	m.Stop()

	todo, _ := filepath.Glob(filepath.Join(home, "queue", "todo", "*"))
	must(t, len(todo) == 0, "todo/ after the deferral: %v", todo)
	local, next := onlyQueueFile(t, home, "local")
	must(t, local == "Tflaky@testhost.example\x00", "local file %q", local)
	must(t, next.After(time.Now()), "next retry %v is not in the future", next)
	info, _ := onlyQueueFile(t, home, "info")
	must(t, string(info) == "Falice@example.org\x00", "info file %q", info)

	m = start(t, home, attr)
	m.WaitLines(`^status: local 0/10 remote 0/20$`, 1)
	m.Signal(syscall.SIGALRM)
	m.WaitLines(`^starting delivery 1: msg \d+ to local flaky@testhost.example$`, 1)
	m.WaitLines(`^delivery 1: deferral: not_now/$`, 1)
	m.Stop()
	for _, l := range m.Lines() {
		must(t, !strings.HasPrefix(l, "new msg"), "the message was preprocessed again: %q", l)
	}
}
