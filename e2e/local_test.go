// Package e2e_test runs goqmail as a whole: mail submitted the way users
// submit it, delivered by the real queue manager and delivery agents.
package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/admin"
	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsend"
	"github.com/goqmail/goqmail/queue"
)

// me is the local domain of every test home.
const me = testenv.Me

func TestLocalDeliveries(t *testing.T) {
	t.Parallel()
	sys := newMailSystem(t, "alice", "bob")
	aliceBox := sys.maildir("alice", "Maildir") // the default delivery
	sys.write("bob", ".qmail", "./Mailbox\n", 0o644)
	sys.write("bob", ".qmail-prog", "|{ echo \"to $RECIPIENT ext $EXT from $SENDER\"; cat; } >>prog.out\n", 0o644)
	sys.write("bob", ".qmail-fwd", "&alice@"+me+"\n", 0o644)
	sys.write("bob", ".qmail-default", "./Default/\n", 0o644)
	defaultBox := sys.maildir("bob", "Default")
	m := sys.start(false)

	sys.sendmail("Subject: to alice\n\nhello alice\n", "-f", "carol@example.org", "alice")
	sys.sendmail("Subject: to bob\n\nhello bob\n", "-f", "carol@example.org", "bob@"+me)
	sys.sendmail("Subject: to a program\n\nhello program\n", "-f", "carol@example.org", "bob-prog@"+me)
	sys.sendmail("Subject: forwarded\n\nhello forward\n", "-f", "dave@example.org", "bob-fwd@"+me)
	sys.sendmail("Subject: any extension\n\nhello default\n", "-f", "carol@example.org", "bob-Anything@"+me)
	// Six messages: the five sent and bob-fwd's copy for alice.
	m.WaitMatches(`^end msg \d+$`, 6)
	m.Stop()
	testsend.QueueEmpty(t, sys.home)

	// Maildir: alice got her own message and bob-fwd's.
	byRecipient := map[string]string{}
	for _, msg := range testsend.MaildirMessages(t, aliceBox) {
		_, subject, _ := strings.Cut(msg, "\nSubject: ")
		subject, _, _ = strings.Cut(subject, "\n")
		byRecipient[subject] = msg
	}
	if len(byRecipient) != 2 {
		t.Fatalf("alice's maildir holds %d messages, want 2: %q", len(byRecipient), byRecipient)
	}
	head := regexp.MustCompile(`^Return-Path: <carol@example\.org>\nDelivered-To: alice@testhost\.example\n` +
		`Received: \(qmail \d+ invoked by uid \d+\); [^\n]+\n`)
	if msg := byRecipient["to alice"]; !head.MatchString(msg) || !strings.HasSuffix(msg, "\nhello alice\n") {
		t.Errorf("alice's message:\n%s", msg)
	}
	// A forward keeps the sender and records both deliveries.
	fwd := regexp.MustCompile(`^Return-Path: <dave@example\.org>\nDelivered-To: alice@testhost\.example\n` +
		`Received: \(qmail \d+ invoked by uid \d+\); [^\n]+\nDelivered-To: bob-fwd@testhost\.example\n`)
	if msg := byRecipient["forwarded"]; !fwd.MatchString(msg) || !strings.HasSuffix(msg, "\nhello forward\n") {
		t.Errorf("forwarded message:\n%s", msg)
	}

	// mbox: a From_ line, then the message and a blank line.
	mbox, err := os.ReadFile(filepath.Join(sys.users["bob"], "Mailbox"))
	if err != nil {
		t.Fatal(err)
	}
	mboxRE := regexp.MustCompile(`^From carol@example\.org [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\n` +
		`Return-Path: <carol@example\.org>\nDelivered-To: bob@testhost\.example\n(?s:.*)\nhello bob\n\n$`)
	if !mboxRE.Match(mbox) || strings.Count(string(mbox), "\nFrom ") != 0 {
		t.Errorf("bob's mbox:\n%s", mbox)
	}

	// A program gets the message on stdin and the envelope in $RECIPIENT,
	// $EXT and $SENDER.
	prog, err := os.ReadFile(filepath.Join(sys.users["bob"], "prog.out"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(prog), "to bob-prog@testhost.example ext prog from carol@example.org\n") ||
		!strings.HasSuffix(string(prog), "\nhello program\n") || strings.Contains(string(prog), "Delivered-To:") {
		t.Errorf("the program got:\n%s", prog)
	}

	// .qmail-default takes an extension without a file of its own.
	got := testsend.MaildirMessages(t, defaultBox)
	if len(got) != 1 || !strings.Contains(got[0], "\nDelivered-To: bob-Anything@testhost.example\n") ||
		!strings.HasSuffix(got[0], "\nhello default\n") {
		t.Errorf(".qmail-default's maildir: %q", got)
	}
}

// bounceRE matches a QSBMF bounce (qmail-send's failure notice) as it
// lands in a maildir, for one failed recipient and its report.
func bounceRE(to, recipient, report, original string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta("Return-Path: <>\nDelivered-To: "+to+"\n") +
		// qmail-queue says "for bounce" only when qmail-send runs as qmails.
		`Received: \(qmail \d+ invoked (by uid \d+|for bounce)\); [^\n]+\n` +
		`Date: \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d -0000\n` +
		regexp.QuoteMeta("From: MAILER-DAEMON@"+me+"\n"+
			"To: "+to+"\n"+
			"Subject: failure notice\n"+
			"\n"+
			"Hi. This is the qmail-send program at "+me+".\n"+
			"I'm afraid I wasn't able to deliver your message to the following addresses.\n"+
			"This is a permanent error; I've given up. Sorry it didn't work out.\n"+
			"\n"+
			"<"+recipient+">:\n"+
			report+"\n"+
			"\n"+
			"--- Below this line is a copy of the message.\n"+
			"\n"+
			"Return-Path: <"+to+">\n") +
		`Received: \(qmail \d+ invoked by uid \d+\); [^\n]+\n(?s:.*)` + regexp.QuoteMeta(original) + `$`)
}

func TestUnknownUserBouncesToSender(t *testing.T) {
	t.Parallel()
	sys := newMailSystem(t, "alice")
	box := sys.maildir("alice", "Maildir")
	m := sys.start(false)
	sys.sendmail("Subject: lost\n\nwhere does this go?\n", "-f", "alice@"+me, "nosuch@"+me)
	m.WaitMatches(`^delivery \d+: failure: Sorry,_no_mailbox_here_by_that_name\._\(#5\.1\.1\)/$`, 1)
	m.WaitMatches(`^bounce msg \d+ qp \d+$`, 1)
	m.WaitMatches(`^end msg \d+$`, 2)
	m.Stop()
	testsend.QueueEmpty(t, sys.home)
	got := testsend.MaildirMessages(t, box)
	want := bounceRE("alice@"+me, "nosuch@"+me, "Sorry, no mailbox here by that name. (#5.1.1)",
		"Subject: lost\n\nwhere does this go?\n")
	if len(got) != 1 || !want.MatchString(got[0]) {
		t.Errorf("alice's maildir: %q", got)
	}
}

func TestBounceOfBounceGoesToDoubleBounceTo(t *testing.T) {
	t.Parallel()
	sys := newMailSystem(t)
	testenv.WriteControl(t, sys.home, "doublebounceto", "bouncekeeper\n")
	testenv.WriteControl(t, sys.home, "doublebouncehost", me+"\n")
	sys.write("alias", ".qmail-bouncekeeper", "./kept/\n", 0o644)
	kept := sys.maildir("alias", "kept")
	pm := sys.maildir("alias", "postmaster-box")
	sys.write("alias", ".qmail-postmaster", "./postmaster-box/\n", 0o644)
	m := sys.start(false)
	// A bounce (empty sender) that cannot be delivered.
	sys.sendmail("Subject: orphan\n\nnobody wants me\n", "-f", "", "nosuch@"+me)
	m.WaitMatches(`^bounce msg \d+ qp \d+$`, 1)
	m.WaitMatches(`^starting delivery \d+: msg \d+ to local bouncekeeper@testhost\.example$`, 1)
	m.WaitMatches(`^end msg \d+$`, 2)
	m.Stop()
	testsend.QueueEmpty(t, sys.home)
	got := testsend.MaildirMessages(t, kept)
	want := regexp.MustCompile(`^Return-Path: <#@\[\]>\nDelivered-To: bouncekeeper@testhost\.example\n(?s:.*)` +
		regexp.QuoteMeta("\nFrom: MAILER-DAEMON@"+me+"\nTo: bouncekeeper@"+me+"\nSubject: failure notice\n\n"+
			"Hi. This is the qmail-send program at "+me+".\n"+
			"I tried to deliver a bounce message to this address, but the bounce bounced!\n\n"+
			"<nosuch@"+me+">:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"+
			"--- Below this line is the original bounce.\n\nReturn-Path: <>\n") +
		`(?s:.*)\nSubject: orphan\n\nnobody wants me\n$`)
	if len(got) != 1 || !want.MatchString(got[0]) {
		t.Errorf("doublebounceto's maildir: %q", got)
	}
	if n := len(testsend.MaildirMessages(t, pm)); n != 0 {
		t.Errorf("the postmaster got %d messages; doublebounceto is someone else", n)
	}
}

func TestHundredDeliveredToLinesBounceAsLoop(t *testing.T) {
	t.Parallel()
	sys := newMailSystem(t, "alice", "bob")
	box := sys.maildir("alice", "Maildir")
	bobBox := sys.maildir("bob", "Maildir")
	m := sys.start(false)
	msg := strings.Repeat("Delivered-To: bob@"+me+"\n", 100) + "Subject: loop\n\nround and round\n"
	sys.sendmail(msg, "-f", "alice@"+me, "bob@"+me)
	m.WaitMatches(`^delivery \d+: failure: This_message_is_looping:_it_already_has_my_Delivered-To_line\._\(#5\.4\.6\)/$`, 1)
	m.WaitMatches(`^end msg \d+$`, 2)
	m.Stop()
	testsend.QueueEmpty(t, sys.home)
	if n := len(testsend.MaildirMessages(t, bobBox)); n != 0 {
		t.Errorf("bob got %d looping messages", n)
	}
	got := testsend.MaildirMessages(t, box)
	want := bounceRE("alice@"+me, "bob@"+me, "This message is looping: it already has my Delivered-To line. (#5.4.6)",
		"Subject: loop\n\nround and round\n")
	if len(got) != 1 || !want.MatchString(got[0]) || strings.Count(got[0], "Delivered-To: bob@"+me+"\n") != 100 {
		t.Errorf("alice's maildir: %q", got)
	}
}

func TestDeferredProgramIsRetriedThenExpires(t *testing.T) {
	t.Parallel()
	sys := newMailSystem(t, "alice", "bob")
	box := sys.maildir("alice", "Maildir")
	sys.write("bob", ".qmail-flaky", "|echo try later; exit 111\n", 0o644)
	m := sys.start(false)
	sys.sendmail("Subject: patience\n\nplease retry\n", "-f", "alice@"+me, "bob-flaky@"+me)
	id := m.WaitMatches(`^starting delivery 1: msg (\d+) to local bob-flaky@testhost\.example$`, 1)[0][1]
	m.WaitMatches(`^delivery 1: deferral: try_later/$`, 1)
	// ALRM: the retry happens now instead of in 100 seconds.
	m.Signal(syscall.SIGALRM)
	m.WaitMatches(`^starting delivery 2: msg `+id+` to local bob-flaky@testhost\.example$`, 1)
	m.WaitMatches(`^delivery 2: deferral: try_later/$`, 1)
	m.Stop()

	// TERM stamps local/N with the next attempt: birth + (isqrt(age of
	// the last attempt) + 10)^2 seconds (qmail-send's nextretry).
	info, err := os.Stat(filepath.Join(sys.home, "queue", "info", split(t, id), id))
	if err != nil {
		t.Fatal(err)
	}
	channel, err := os.Stat(filepath.Join(sys.home, "queue", "local", split(t, id), id))
	if err != nil {
		t.Fatal(err)
	}
	// qmail keeps times in whole seconds.
	wait := channel.ModTime().Unix() - info.ModTime().Unix()
	onSchedule := false
	for k := int64(0); k < 5; k++ {
		onSchedule = onSchedule || wait == (k+10)*(k+10)
	}
	if !onSchedule {
		t.Errorf("next attempt %d s after birth: not on qmail's local schedule", wait)
	}
	if n := len(testsend.MaildirMessages(t, box)); n != 0 {
		t.Fatalf("alice got %d messages before the message expired", n)
	}

	// queuelifetime is read at startup. Once the message is older than
	// it, the next attempt is the last one and its deferral a failure.
	testenv.WriteControl(t, sys.home, "queuelifetime", "1\n")
	for time.Since(info.ModTime()) <= 2*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	m = sys.start(true)
	m.WaitMatches(`^status: local 0/10 remote 0/20$`, 1)
	m.Signal(syscall.SIGALRM)
	m.WaitMatches(`^starting delivery 1: msg `+id+` to local bob-flaky@testhost\.example$`, 1)
	m.WaitMatches(`^delivery 1: failure: try_later/I'm_not_going_to_try_again;_this_message_has_been_in_the_queue_too_long\./$`, 1)
	m.WaitMatches(`^bounce msg `+id+` qp \d+$`, 1)
	m.WaitMatches(`^end msg \d+$`, 2)
	m.Stop()
	testsend.QueueEmpty(t, sys.home)
	got := testsend.MaildirMessages(t, box)
	want := bounceRE("alice@"+me, "bob-flaky@"+me,
		"try later\nI'm not going to try again; this message has been in the queue too long.",
		"Subject: patience\n\nplease retry\n")
	if len(got) != 1 || !want.MatchString(got[0]) {
		t.Errorf("alice's maildir: %q", got)
	}
}

// split is the queue subdirectory of a message id from the log.
func split(t *testing.T, id string) string {
	t.Helper()
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		t.Fatalf("message id %q: %v", id, err)
	}
	return strconv.FormatUint(n%queue.Split, 10)
}

func TestKilledQueueManagerLosesNothing(t *testing.T) {
	t.Parallel()
	const total = 300
	sys := newMailSystem(t, "alice")
	box := sys.maildir("alice", "Maildir")
	// Each message has a sender of its own, so that a delivered copy
	// (its Return-Path) and the log's "info msg" name the same message.
	for i := 0; i < total; i++ {
		sys.enqueue(fmt.Sprintf("Subject: number %d\n\n%d\n", i, i), fmt.Sprintf("n%d@example.org", i), "alice@"+me)
	}
	m := sys.start(false)
	m.WaitMatches(`^delivery \d+: success`, total/4)
	log := m.Kill()

	// What may be delivered twice: deliveries running at the kill (no
	// result logged), and the last result, which qmail-send logs just
	// before it marks the recipient done.
	senderOf := map[string]string{}
	running := map[string]string{} // delivery → message
	lastResult := ""
	infoRE := regexp.MustCompile(`^info msg (\d+): bytes \d+ from <(n\d+)@example\.org> `)
	startRE := regexp.MustCompile(`^starting delivery (\d+): msg (\d+) `)
	resultRE := regexp.MustCompile(`^delivery (\d+): `)
	for _, l := range log {
		if sub := infoRE.FindStringSubmatch(l); sub != nil {
			senderOf[sub[1]] = sub[2]
		} else if sub := startRE.FindStringSubmatch(l); sub != nil {
			running[sub[1]] = sub[2]
		} else if sub := resultRE.FindStringSubmatch(l); sub != nil {
			lastResult = senderOf[running[sub[1]]]
			delete(running, sub[1])
		}
	}
	mayRepeat := map[string]bool{lastResult: true}
	for _, msg := range running {
		mayRepeat[senderOf[msg]] = true
	}

	m = sys.start(true)
	deadline := time.Now().Add(testsend.WaitLimit)
	for {
		// A kill between "end msg" and qmail-clean's removal leaves
		// mess/N for the 36-hour sweep, as in qmail: what counts is that
		// nothing is left to deliver.
		left, _ := filepath.Glob(filepath.Join(sys.home, "queue", "info", "*", "*"))
		todo, _ := filepath.Glob(filepath.Join(sys.home, "queue", "todo", "*"))
		if len(left)+len(todo) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued", len(left)+len(todo))
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.Stop()

	copies := map[string]int{}
	for _, msg := range testsend.MaildirMessages(t, box) {
		rp, _, _ := strings.Cut(msg, "\n")
		sender, ok := strings.CutPrefix(rp, "Return-Path: <")
		sender, _, _ = strings.Cut(sender, "@")
		if !ok {
			t.Fatalf("delivered message without its Return-Path: %q", msg)
		}
		copies[sender]++
	}
	for i := 0; i < total; i++ {
		sender := fmt.Sprintf("n%d", i)
		switch n := copies[sender]; {
		case n == 0:
			t.Errorf("message %d was lost", i)
		case n > 1 && !mayRepeat[sender]:
			t.Errorf("message %d was delivered %d times, but its delivery was not running at the kill; its log:\n%s",
				i, n, strings.Join(logOf(log, sender, senderOf), "\n"))
		}
	}
	repeated := 0
	for _, n := range copies {
		repeated += n - 1
	}
	t.Logf("killed after %d log lines; %d deliveries were running, %d copies were repeated", len(log), len(running), repeated)
	if len(copies) != total {
		t.Errorf("copies of %d different messages, want %d", len(copies), total)
	}
}

// logOf is what the log says of the message from sender: its lines and
// those of its deliveries.
func logOf(log []string, sender string, senderOf map[string]string) []string {
	var id string
	for msg, s := range senderOf {
		if s == sender {
			id = msg
		}
	}
	deliveries := map[string]bool{}
	startRE := regexp.MustCompile(`^starting delivery (\d+): msg (\d+) `)
	var lines []string
	for i, l := range log {
		if sub := startRE.FindStringSubmatch(l); sub != nil && sub[2] == id {
			deliveries[sub[1]] = true
		}
		mentions := strings.Contains(l, "msg "+id+":") || strings.Contains(l, "msg "+id+" ") || strings.HasSuffix(l, "msg "+id)
		for d := range deliveries {
			mentions = mentions || strings.HasPrefix(l, "delivery "+d+":")
		}
		if mentions {
			lines = append(lines, fmt.Sprintf("%4d/%d %s", i, len(log), l))
		}
	}
	return lines
}

func TestHUPRereadsLocals(t *testing.T) {
	t.Parallel()
	sys := newMailSystem(t, "alice", "bob")
	box := sys.maildir("alice", "Maildir")
	sys.write("bob", ".qmail-flaky", "|exit 111\n", 0o644)
	m := sys.start(false)

	// Not yet local: new.example goes to the (fake) remote channel.
	sys.sendmail("Subject: before\n\n", "-f", "bob@"+me, "alice@new.example")
	m.WaitMatches(`^starting delivery \d+: msg \d+ to remote alice@new\.example$`, 1)
	// A deferred message, whose retry shows when ALRM was handled.
	sys.sendmail("Subject: marker\n\n", "-f", "bob@"+me, "bob-flaky@"+me)
	m.WaitMatches(`^delivery \d+: deferral: `, 1)
	m.WaitMatches(`^end msg \d+$`, 1)

	testenv.WriteControl(t, sys.home, "locals", me+"\nnew.example\n")
	m.Signal(syscall.SIGHUP)
	// qmail-send logs nothing for HUP. Once the kernel has handed HUP
	// over, it reaches qmail-send's one signal channel before a later
	// ALRM, so once ALRM's retry starts, the HUP has been handled.
	m.WaitSignalTaken(syscall.SIGHUP)
	m.Signal(syscall.SIGALRM)
	m.WaitMatches(`^starting delivery \d+: msg \d+ to local bob-flaky@testhost\.example$`, 2)

	sys.sendmail("Subject: after\n\nnow local\n", "-f", "bob@"+me, "alice@new.example")
	m.WaitMatches(`^starting delivery \d+: msg \d+ to local alice@new\.example$`, 1)
	got := testsend.WaitMaildir(t, box, 1)
	m.Stop()
	if len(got) != 1 || !strings.Contains(got[0], "\nDelivered-To: alice@new.example\n") || !strings.HasSuffix(got[0], "\nnow local\n") {
		t.Errorf("alice's maildir: %q", got)
	}
	remote, err := os.ReadDir(filepath.Join(sys.home, "remote-out"))
	if err != nil || len(remote) != 1 {
		t.Errorf("remote deliveries: %v, %v; want only the one before HUP", remote, err)
	}
}

// TestPrivilegedInstallation runs a home with qmail's owners and modes as
// a real installation runs: qmail-start as root drops to qmails, qmailr
// and qmailq, qmail-lspawn delivers as the recipient, and a user's
// sendmail reaches the queue through qmail-queue, setuid qmailq. A setuid
// qmail-queue ignores $QMAILHOME, so every program runs in a private
// mount namespace where the test home is mounted on /var/qmail.
func TestPrivilegedInstallation(t *testing.T) {
	t.Parallel()
	// CI has everything this test needs; elsewhere it may be missing.
	cannot := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Getuid() != 0 {
		cannot("needs root")
	}
	ids, err := admin.LookupIds()
	if err != nil {
		cannot("%v (scripts/qmail-users.sh creates them)", err)
	}
	for _, tool := range []string{"unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			cannot("%s (util-linux, mount): %v", tool, err)
		}
	}
	root := t.TempDir()
	for _, dir := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	programs := filepath.Join(root, "programs")
	mkdirs(t, 0o755, programs)
	for _, name := range localPrograms {
		if err := os.Symlink(testenv.Program(t, name), filepath.Join(programs, name)); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(root, "qmail")
	if err := admin.InitHome(admin.InitOptions{Home: home, Me: me, Programs: programs, Ids: ids}); err != nil {
		t.Fatal(err)
	}

	// The recipient: nobody, with a home of its own, in users/assign.
	rcptHome := filepath.Join(root, "rcpt")
	for _, dir := range []string{rcptHome, filepath.Join(rcptHome, "Maildir"), filepath.Join(rcptHome, "Maildir", "tmp"),
		filepath.Join(rcptHome, "Maildir", "new"), filepath.Join(rcptHome, "Maildir", "cur")} {
		mkdirs(t, 0o700, dir)
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(rcptHome, 0o755); err != nil {
		t.Fatal(err)
	}
	writeMode(t, filepath.Join(home, "users", "assign"), fmt.Sprintf("=rcpt:nobody:%d:%d:%s:::\n.\n", nobody, nobody, rcptHome), 0o644)
	newu := exec.Command(filepath.Join(home, "bin", "qmail-newu"))
	newu.Env = []string{"QMAILHOME=" + home}
	if out, err := newu.CombinedOutput(); err != nil {
		t.Fatalf("qmail-newu: %v\n%s", err, out)
	}

	// inHome runs a program of the installation as /var/qmail/bin/name.
	inHome := func(prefix []string, name string, args ...string) *exec.Cmd {
		script := `mount -t tmpfs -o mode=0755 tmpfs /var && mkdir /var/qmail && mount --bind "$1" /var/qmail && shift && exec "$@"`
		argv := append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", home}, prefix...)
		argv = append(argv, filepath.Join("/var/qmail/bin", name))
		cmd := exec.Command("unshare", append(argv, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "USER=someone"}
		return cmd
	}
	asNobody := []string{"setpriv", fmt.Sprintf("--reuid=%d", nobody), fmt.Sprintf("--regid=%d", nobody), "--clear-groups"}
	inject := inHome(asNobody, "sendmail", "-f", "someone@"+me, "rcpt@"+me)
	inject.Stdin = strings.NewReader("Subject: privileged\n\nfor rcpt\n")
	if out, err := inject.CombinedOutput(); err != nil {
		t.Fatalf("sendmail as nobody: %v\n%s", err, out)
	}
	mess, _ := filepath.Glob(filepath.Join(home, "queue", "mess", "*", "*"))
	if len(mess) != 1 {
		t.Fatalf("queue/mess holds %q, want one message", mess)
	}
	if uid := ownerUID(t, mess[0]); uid != ids.Qmailq {
		t.Errorf("%s is owned by uid %d, not qmailq (%d): qmail-queue did not run setuid", mess[0], uid, ids.Qmailq)
	}

	m := testsend.Start(t, inHome(nil, "qmail-start", "./Maildir/"), false)
	m.WaitMatches(`^starting delivery 1: msg \d+ to local rcpt@testhost\.example$`, 1)
	m.WaitMatches(`^delivery 1: success: did_1\+0\+0/$`, 1)
	m.WaitMatches(`^end msg \d+$`, 1)
	// qmail-start became qmail-send and dropped to qmails.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("\nUid:\t%d\t%d\t%d\t%d\n", ids.Qmails, ids.Qmails, ids.Qmails, ids.Qmails); !strings.Contains(string(status), want) {
		t.Errorf("qmail-send does not run as qmails (%d):\n%s", ids.Qmails, status)
	}
	m.Stop()
	testsend.QueueEmpty(t, home)

	box := filepath.Join(rcptHome, "Maildir")
	got := testsend.MaildirMessages(t, box)
	if len(got) != 1 || !strings.HasPrefix(got[0], "Return-Path: <someone@"+me+">\nDelivered-To: rcpt@"+me+"\n") ||
		!strings.HasSuffix(got[0], "\nfor rcpt\n") {
		t.Fatalf("rcpt's maildir: %q", got)
	}
	files, _ := filepath.Glob(filepath.Join(box, "new", "*"))
	if uid := ownerUID(t, files[0]); uid != nobody {
		t.Errorf("the delivered message is owned by uid %d, not the recipient's %d", uid, nobody)
	}
	if !strings.Contains(got[0], fmt.Sprintf(" invoked by uid %d); ", nobody)) {
		t.Errorf("qmail-queue did not record the real uid of the sender:\n%s", got[0])
	}
}

func ownerUID(t *testing.T, path string) int {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}
