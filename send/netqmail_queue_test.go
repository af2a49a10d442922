package send_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsend"
	"github.com/goqmail/goqmail/queue"
)

// netqmailMessage puts a message file into queue/mess the way
// qmail-queue does (named after its inode, in split inode%23) and
// returns its id.
func netqmailMessage(t *testing.T, home, content string) uint64 {
	t.Helper()
	qdir := filepath.Join(home, "queue")
	tmp := filepath.Join(qdir, "pid", "handmade")
	writeFile(t, tmp, content, 0o644)
	fi, err := os.Stat(tmp)
	if err != nil {
		t.Fatal(err)
	}
	id := fi.Sys().(*syscall.Stat_t).Ino
	if err := os.Link(tmp, queuePath(home, "mess", id)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	return id
}

func queuePath(home, dir string, id uint64) string {
	name := strconv.FormatUint(id, 10)
	switch dir {
	case "todo", "intd", "bounce":
		return filepath.Join(home, "queue", dir, name)
	}
	return filepath.Join(home, "queue", dir, strconv.FormatUint(id%queue.Split, 10), name)
}

// TestNetqmailQueue drains a queue whose files are written byte by byte
// as netqmail 1.06 writes them: a todo file (intd hard link) with u, p,
// F and T records, a todo file without u and p, and a message already
// preprocessed into info, local and remote files with D (done) and T
// records. Every pending recipient, and only those, must be delivered,
// and the log must carry netqmail's info line.
func TestNetqmailQueue(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	bob := testsend.AliasMaildir(t, home, "bob", "bob")

	// State S4: mess + intd + todo, as qmail-queue leaves it.
	id1 := netqmailMessage(t, home, "Subject: one\n\n1\n")
	env1 := "u1000\x00p4242\x00Falice@example.org\x00Tbob@testhost.example\x00Tfar@remote.example\x00"
	writeFile(t, queuePath(home, "intd", id1), env1, 0o600)
	if err := os.Link(queuePath(home, "intd", id1), queuePath(home, "todo", id1)); err != nil {
		t.Fatal(err)
	}
	// A todo file without u and p records: netqmail logs them as 0.
	id3 := netqmailMessage(t, home, "Subject: three\n\n3\n")
	writeFile(t, queuePath(home, "todo", id3), "Fdave@example.org\x00Tbob\x00", 0o600)

	// State S5: preprocessed, one recipient of each channel done.
	id2 := netqmailMessage(t, home, "Subject: two\n\n2\n")
	writeFile(t, queuePath(home, "info", id2), "Fcarol@example.org\x00", 0o600)
	writeFile(t, queuePath(home, "local", id2), "Dold@testhost.example\x00Tbob@testhost.example\x00", 0o600)
	writeFile(t, queuePath(home, "remote", id2), "Dgone@remote.example\x00Tfar2@remote.example\x00", 0o600)
	birth := time.Now().Add(-time.Minute)
	due := time.Now().Add(-time.Second)
	for _, f := range []struct {
		dir string
		t   time.Time
	}{{"info", birth}, {"local", due}, {"remote", due}} {
		if err := os.Chtimes(queuePath(home, f.dir, id2), f.t, f.t); err != nil {
			t.Fatal(err)
		}
	}

	// Every delivery done, bounce/N written, then a crash before the
	// bounce was queued: the bounce goes out on restart.
	id4 := netqmailMessage(t, home, "Subject: four\n\n4\n")
	writeFile(t, queuePath(home, "info", id4), "Ferin@remote.example\x00", 0o600)
	paragraph := "<lost@testhost.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
	writeFile(t, queuePath(home, "bounce", id4), paragraph, 0o600)

	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	m.WaitLines(`^end msg \d+$`, 5) // four messages and the bounce
	m.Stop()
	testsend.QueueEmpty(t, home)

	lines := strings.Join(m.Lines(), "\n")
	s1, s3, s4 := strconv.FormatUint(id1, 10), strconv.FormatUint(id3, 10), strconv.FormatUint(id4, 10)
	for _, re := range []string{
		`(?m)^info msg ` + s1 + `: bytes \d+ from <alice@example.org> qp 4242 uid 1000$`,
		`(?m)^info msg ` + s3 + `: bytes \d+ from <dave@example.org> qp 0 uid 0$`,
		`(?m)^starting delivery \d+: msg ` + s3 + ` to local bob@testhost.example$`,
		`(?m)^bounce msg ` + s4 + ` qp \d+$`,
		`(?m)^end msg ` + s4 + `$`,
	} {
		must(t, regexp.MustCompile(re).MatchString(lines), "log lacks %s:\n%s", re, lines)
	}
	must(t, !strings.Contains(lines, "new msg "+strconv.FormatUint(id2, 10)),
		"a preprocessed message was preprocessed again:\n%s", lines)
	for _, done := range []string{"old@testhost.example", "gone@remote.example"} {
		must(t, !strings.Contains(lines, done), "a D record was delivered again:\n%s", lines)
	}

	got := testsend.MaildirMessages(t, bob)
	must(t, len(got) == 3, "bob got %d messages, want 3", len(got))
	var remote []string
	for _, f := range testsend.RemoteOut(t, home) {
		// host, sender (empty for the bounce), recipient, message
		remote = append(remote, strings.SplitN(f, "\n", 4)[2])
	}
	must(t, len(remote) == 3, "qmail-remote ran %d times, want 3: %q", len(remote), remote)
	for _, want := range []string{"far@remote.example", "far2@remote.example", "erin@remote.example"} {
		must(t, strings.Contains(strings.Join(remote, " "), want), "no remote delivery to %s: %q", want, remote)
	}
	var bounce string
	for _, f := range testsend.RemoteOut(t, home) {
		if strings.Contains(f, "Subject: failure notice\n") {
			bounce = f
		}
	}
	must(t, strings.Contains(bounce, "\n\n"+paragraph+"--- Below this line is a copy of the message.\n\n"+
		"Return-Path: <erin@remote.example>\nSubject: four\n\n4\n"), "bounce of message four:\n%s", bounce)
}

// TestLongRewrittenRecipient queues the longest recipient qmail-queue
// takes, without a domain: qmail-send adds "@" and envnoathost, which
// makes the remote/ record longer than any queue address. It must still
// be delivered, not left in the queue as unreadable.
func TestLongRewrittenRecipient(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	testenv.WriteControl(t, home, "envnoathost", "mailhost.example.org\n")
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	box := strings.Repeat("x", queue.MaxAddr-1)
	enqueue(t, home, attr, "Subject: long\n\nbody\n", "alice@example.org", box)
	m.WaitLines(`^end msg \d+$`, 1)
	m.Stop()
	testsend.QueueEmpty(t, home)
	lines := strings.Join(m.Lines(), "\n")
	must(t, strings.Contains(lines, "to remote "+box+"@mailhost.example.org\n"), "no delivery to the rewritten address:\n%s", lines)
	out := testsend.RemoteOut(t, home)
	must(t, len(out) == 1 && strings.Contains(out[0], "\n"+box+"@mailhost.example.org\n"),
		"qmail-remote did not get the rewritten address: %d deliveries", len(out))
}

// TestExitDuringPass stops qmail-send while a pass over a remote/ file is
// under way (one delivery running, the other recipients not reached). As
// in qmail, the file keeps its times: the recipients the pass did not
// reach are due at once after a restart, not at the next retry time,
// which for a message just queued lies 400 seconds ahead.
func TestExitDuringPass(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	testenv.WriteControl(t, home, "concurrencyremote", "1\n")
	// Each delivery waits for its own release file, so the test decides
	// how many finish.
	script := "#!/bin/sh\n" +
		"while [ ! -e \"$QMAILHOME/release-$3\" ]; do sleep 0.1; done\n" +
		"printf 'r\\0K1.2.3.4 accepted message./Remote host said: 250 ok\\n\\0'\n"
	writeFile(t, filepath.Join(home, "bin", "fake-remote"), script, 0o755)
	attr := testsend.RunAs(t, home)
	m := start(t, home, attr)
	recips := []string{"a@remote.example", "b@remote.example", "c@remote.example", "d@remote.example", "e@remote.example"}
	enqueue(t, home, attr, "Subject: list\n\nbody\n", "alice@example.org", recips...)
	first := m.WaitLines(`^starting delivery 1: msg \d+ to remote a@remote.example$`, 1)[0]
	id, _ := strconv.ParseUint(strings.Fields(first)[4], 10, 64)
	m.Signal(syscall.SIGTERM)
	// Release deliveries one at a time until one finishes after the
	// signal was seen (normally the first).
	done := 0
	for done < len(recips)-1 {
		writeFile(t, filepath.Join(home, "release-"+recips[done]), "", 0o644)
		done++
		// The first "remote 0/1" status is the one at startup.
		st := m.WaitLines(`^status: local 0/10 remote 0/1( exitasap)?$`, done+1)
		if strings.HasSuffix(st[done], " exitasap") {
			break
		}
		m.WaitLines(`^starting delivery `+strconv.Itoa(done+1)+`: `, 1)
	}
	m.WaitLines(`^status: exiting$`, 1)
	if err := m.Cmd.Wait(); err != nil {
		t.Fatalf("qmail-send: %v", err)
	}
	must(t, done < len(recips)-1, "qmail-send never saw SIGTERM")
	path := queuePath(home, "remote", id)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	must(t, !fi.ModTime().After(time.Now()),
		"remote file of an interrupted pass stamped with a future retry time %v", fi.ModTime())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for i, r := range recips {
		mark := "T"
		if i < done {
			mark = "D"
		}
		want += mark + r + "\x00"
	}
	must(t, string(b) == want, "remote file: %q, want %q", b, want)

	// A restart delivers the rest at once.
	for _, r := range recips {
		writeFile(t, filepath.Join(home, "release-"+r), "", 0o644)
	}
	m = start(t, home, attr)
	m.WaitLines(`^end msg \d+$`, 1)
	m.Stop()
	testsend.QueueEmpty(t, home)
}
