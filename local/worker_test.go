package local_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/worker"
)

// These tests run the real qmail-local both ways qmail-lspawn can: as a
// worker through a worker.Pool, and once per delivery. They use a home
// with bin/qmail-local the way qmail-lspawn runs it: Path
// home/bin/qmail-local, argv[0] "qmail-local", in the qmail home, with
// this process's environment.

// waitFor is how long a test waits for something that should happen at
// once; it only bounds a hung test.
const waitFor = 2 * time.Minute

// lockedBuffer is a pool's log, written to by its goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newPool makes a pool whose idle workers stay until Close, closed when
// the test ends, and whose log must stay empty.
func newPool(t *testing.T) *worker.Pool {
	t.Helper()
	log := &lockedBuffer{}
	p := worker.NewPool(log, time.Hour, 100, worker.LocalPerWorker)
	t.Cleanup(func() {
		p.Close()
		if s := log.String(); s != "" {
			t.Errorf("worker log: %q", s)
		}
	})
	return p
}

// newMaildirUser is a user whose .qmail delivers to ./Maildir/, and
// that maildir.
func newMaildirUser(t *testing.T) (*user, string) {
	t.Helper()
	u := newUser(t)
	md := u.maildir("Maildir")
	u.write(".qmail", "./Maildir/\n", 0o644)
	return u, md
}

// lspawnCommand is the command qmail-lspawn runs for delivery d to user
// u (spawn.Local.Command): no environment, ids or descriptors of its own.
func lspawnCommand(qmailHome string, u *user, d delivery) *exec.Cmd {
	if d.host == "" {
		d.host = "example.org"
	}
	if d.local == "" {
		d.local = "bob" + d.dash + d.ext
	}
	if d.defaultDelivery == "" {
		d.defaultDelivery = "./Mailbox"
	}
	cmd := exec.Command(filepath.Join(qmailHome, "bin", "qmail-local"), "--",
		"bob", u.home, d.local, d.dash, d.ext, d.host, d.sendr, d.defaultDelivery)
	cmd.Args[0] = "qmail-local"
	cmd.Dir = qmailHome
	return cmd
}

// messageFile is msg in a file opened for reading, as the queue's
// message is.
func messageFile(t *testing.T, msg string) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(p, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	return testenv.OpenFile(t, p)
}

// outcome is a delivery's exit code and its fd 1 and 2 together, as
// qmail-lspawn collects them.
type outcome struct {
	code int
	out  string
}

// viaWorker runs the delivery in a worker of p.
func viaWorker(t *testing.T, p *worker.Pool, cmd *exec.Cmd, msg string) outcome {
	t.Helper()
	var out bytes.Buffer
	res, handled := p.Run(cmd, messageFile(t, msg), &out)
	if !handled {
		t.Fatalf("%v: not run as a worker", cmd.Args)
	}
	if res.Crashed {
		t.Fatalf("%v: worker crashed; output %q", cmd.Args, out.String())
	}
	return outcome{res.ExitCode, out.String()}
}

// viaExec runs the delivery as its own qmail-local process.
func viaExec(t *testing.T, cmd *exec.Cmd, msg string) outcome {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdin = messageFile(t, msg)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return outcome{cmd.ProcessState.ExitCode(), out.String()}
}

// maildirEntry is a maildir file name: TIME.PID_SEQ.HOST, SEQ 1 when
// absent.
type maildirEntry struct {
	name     string
	pid, seq int
}

var maildirEntryName = regexp.MustCompile(`^[0-9]+\.([0-9]+)(?:_([0-9]+))?\.[^/.][^/]*$`)

// maildirNew lists dir/new, by sequence number.
func maildirNew(t *testing.T, dir string) []maildirEntry {
	t.Helper()
	files, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []maildirEntry
	for _, f := range files {
		m := maildirEntryName.FindStringSubmatch(f.Name())
		if m == nil {
			t.Fatalf("maildir file name %q", f.Name())
		}
		e := maildirEntry{name: f.Name(), seq: 1}
		e.pid, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			e.seq, _ = strconv.Atoi(m[2])
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].seq < entries[j].seq })
	return entries
}

// isWorker tells whether pid is a running qmail-local worker.
func isWorker(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && string(b) == "qmail-local\x00"+worker.Arg+"\x00"
}

// gone tells whether pid no longer exists (it has been reaped).
func gone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// waitUntil polls cond until it holds, failing the test after waitFor.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v", what, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Deliveries in a row go through one worker process: the maildir names
// show one pid and a growing sequence number.
func TestWorkerReusesProcess(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	u, md := newMaildirUser(t)
	p := newPool(t)
	const n = 5
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("Subject: %d\n\n%s", i, message)
		got := viaWorker(t, p, lspawnCommand(home, u, delivery{sendr: "alice@example.com"}), msg)
		if got != (outcome{0, "did 1+0+0\n"}) {
			t.Fatalf("delivery %d: %+v", i, got)
		}
	}
	entries := maildirNew(t, md)
	if len(entries) != n {
		t.Fatalf("%d messages in new/, want %d", len(entries), n)
	}
	pid := entries[0].pid
	for i, e := range entries {
		if e.pid != pid || e.seq != i+1 {
			t.Errorf("maildir file %d is %q: want pid %d, sequence %d", i, e.name, pid, i+1)
		}
		// In the order delivered, each complete.
		want := fmt.Sprintf("Return-Path: <alice@example.com>\nDelivered-To: bob@example.org\nSubject: %d\n\n%s", i, message)
		if got := readFile(t, filepath.Join(md, "new", e.name)); got != want {
			t.Errorf("%s: %q, want %q", e.name, got, want)
		}
	}
	if pid == os.Getpid() || !isWorker(pid) {
		t.Errorf("pid %d of the maildir names is not a qmail-local worker", pid)
	}
	if files, _ := os.ReadDir(filepath.Join(md, "tmp")); len(files) != 0 {
		t.Errorf("left in tmp/: %v", files)
	}
}

// A worker's delivery is qmail-local's: same exit code, same output,
// same effect, one delivery after another in the same worker.
func TestWorkerSameAsExec(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	tests := []struct {
		name   string
		dotq   string // .qmail-ext
		dash   string
		ext    string
		want   outcome
		effect string // a file in the user's home and its content
	}{
		{"maildir", "./Maildir/\n", "-", "box", outcome{0, "did 1+0+0\n"}, ""},
		{"mbox", "./mbox\n", "-", "mbox", outcome{0, "did 1+0+0\n"}, ""},
		{"bounce", "", "-", "nosuch", outcome{100, "Sorry, no mailbox here by that name. (#5.1.1)\n"}, ""},
		{"program failing", "|echo \"to $RECIPIENT from $SENDER\"; echo oops >&2; exit 111\n", "-", "fail",
			outcome{111, "to bob-fail@example.org from a@b.example\noops\n"}, ""},
		// More output than a pipe holds: the spawner reads while the
		// delivery runs.
		{"program talkative", "|head -c 200000 /dev/zero | tr '\\0' x; exit 111\n", "-", "talk",
			outcome{111, strings.Repeat("x", 200000)}, ""},
		{"program hard failure", "|echo no such list; exit 100\n", "-", "hard", outcome{100, "no such list\n"}, ""},
		{"program", "|cat > prog.out\n", "-", "prog", outcome{0, "did 0+0+1\n"}, "prog.out"},
		{"program and maildir", "|exit 0\n./Maildir/\n", "-", "both", outcome{0, "did 1+0+1\n"}, ""},
		{"program stops", "|exit 99\n./Maildir/\n", "-", "stop", outcome{0, "did 0+0+1\n"}, ""},
		{"program crashes", "|kill -9 $$\n", "-", "crash", outcome{111, "Aack, child crashed. (#4.3.0)\n"}, ""},
		// A program run by a worker must not inherit the worker's
		// socket to the spawner (fd 3): it could answer for the
		// worker.
		{"program descriptors", "|for f in /proc/$$/fd/*; do case $(readlink $f) in socket:*) echo socket ${f##*/};; esac; done\n",
			"-", "fds", outcome{0, "did 0+0+1\n"}, ""},
		{"missing maildir", "./Nowhere/\n", "-", "nowhere", outcome{111, "Unable to chdir to maildir. (#4.2.1)\n"}, ""},
		{"loop", "./Maildir/\n", "-", "loop", outcome{100, "This message is looping: it already has my Delivered-To line. (#5.4.6)\n"}, ""},
	}
	// Each delivery runs twice: in a worker, then as its own process,
	// each into its own user.
	p := newPool(t)
	users := [2]*user{newUser(t), newUser(t)}
	for _, u := range users {
		u.maildir("Maildir")
		for _, tt := range tests {
			if tt.dotq != "" {
				u.write(".qmail-"+tt.ext, tt.dotq, 0o644)
			}
		}
	}
	for _, tt := range tests {
		msg := message
		if tt.name == "loop" {
			msg = "Delivered-To: bob-loop@example.org\n" + message
		}
		d := delivery{dash: tt.dash, ext: tt.ext, sendr: "a@b.example"}
		fromWorker := viaWorker(t, p, lspawnCommand(home, users[0], d), msg)
		fromExec := viaExec(t, lspawnCommand(home, users[1], d), msg)
		// A worker's answer carries the first MaxOutput bytes of the
		// output, more than qmail-lspawn keeps.
		execCut := fromExec
		execCut.out = execCut.out[:min(len(execCut.out), worker.MaxOutput)]
		if fromWorker != execCut {
			t.Errorf("%s: worker %+v, qmail-local %+v", tt.name, fromWorker, execCut)
		}
		if fromExec != tt.want {
			t.Errorf("%s: qmail-local %+v, want %+v", tt.name, fromExec, tt.want)
		}
		if tt.effect != "" {
			if a, b := users[0].read(tt.effect), users[1].read(tt.effect); a != b || a != message {
				t.Errorf("%s: %s %q from the worker, %q from qmail-local", tt.name, tt.effect, a, b)
			}
		}
	}
	if a, b := users[0].read("mbox"), users[1].read("mbox"); !fromLine.MatchString(a) ||
		fromLine.ReplaceAllString(a, "") != fromLine.ReplaceAllString(b, "") {
		t.Errorf("mbox %q from the worker, %q from qmail-local", a, b)
	}
	for i, u := range users {
		entries := maildirNew(t, filepath.Join(u.home, "Maildir"))
		if len(entries) != 2 {
			t.Errorf("user %d: %d messages in Maildir, want 2", i, len(entries))
		}
	}
}

// Forwarding through the home's qmail-queue. The worker finds the home
// as qmail-local does, from $QMAILHOME in the environment it inherits.
func TestWorkerForward(t *testing.T) {
	home := testenv.NewHome(t, "qmail-local", "qmail-queue")
	t.Setenv("QMAILHOME", home)
	p := newPool(t)
	users := [2]*user{newUser(t), newUser(t)}
	for _, u := range users {
		u.write(".qmail-list", "&a@one.example\nb@two.example\n", 0o644)
		u.write(".qmail-list-owner", "", 0o644)
	}
	d := delivery{dash: "-", ext: "list", sendr: "s@x.org"}
	qp := regexp.MustCompile(`\nqp [0-9]+\n$`)
	for i := 0; i < 2; i++ {
		fromWorker := viaWorker(t, p, lspawnCommand(home, users[0], d), message)
		fromExec := viaExec(t, lspawnCommand(home, users[1], d), message)
		if !qp.MatchString(fromWorker.out) || !qp.MatchString(fromExec.out) {
			t.Fatalf("worker %+v, qmail-local %+v: want a qp line", fromWorker, fromExec)
		}
		fromWorker.out = qp.ReplaceAllString(fromWorker.out, "\nqp N\n")
		fromExec.out = qp.ReplaceAllString(fromExec.out, "\nqp N\n")
		want := outcome{0, "did 0+2+0\nqp N\n"}
		if fromWorker != want || fromExec != want {
			t.Errorf("worker %+v, qmail-local %+v, want %+v", fromWorker, fromExec, want)
		}
	}
	todo, err := os.ReadDir(filepath.Join(home, "queue", "todo"))
	if err != nil || len(todo) != 4 {
		t.Fatalf("queue/todo: %v %v, want 4 messages", todo, err)
	}
}

// A worker killed during a delivery is a crashed qmail-local; the next
// delivery starts a new worker.
func TestWorkerKilled(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	u := newUser(t)
	md := u.maildir("Maildir")
	u.write(".qmail-box", "./Maildir/\n", 0o644)
	// The program lets go of the delivery's output, says it has
	// started, then waits: only the worker's death ends the delivery.
	u.write(".qmail-sleep", "|exec >/dev/null 2>&1; echo $$ > sleep.pid.tmp; mv sleep.pid.tmp sleep.pid; exec sleep 3600\n", 0o644)
	p := newPool(t)
	box := delivery{dash: "-", ext: "box"}
	if got := viaWorker(t, p, lspawnCommand(home, u, box), message); got != (outcome{0, "did 1+0+0\n"}) {
		t.Fatalf("first delivery: %+v", got)
	}
	first := maildirNew(t, md)[0].pid
	if !isWorker(first) {
		t.Fatalf("pid %d is not a worker", first)
	}

	type ran struct {
		res     worker.Result
		handled bool
		out     string
	}
	done := make(chan ran, 1)
	sleepCmd, sleepMsg := lspawnCommand(home, u, delivery{dash: "-", ext: "sleep"}), messageFile(t, message)
	go func() {
		var out lockedBuffer
		res, handled := p.Run(sleepCmd, sleepMsg, &out)
		done <- ran{res, handled, out.String()}
	}()
	pidFile := filepath.Join(u.home, "sleep.pid")
	waitUntil(t, "the program to start", func() bool { _, err := os.Stat(pidFile); return err == nil })
	sleeper, err := strconv.Atoi(strings.TrimSpace(u.read("sleep.pid")))
	if err != nil {
		t.Fatal(err)
	}
	// Whatever happens, the program does not outlive the test.
	defer syscall.Kill(sleeper, syscall.SIGKILL)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var r ran
	select {
	case r = <-done:
	case <-time.After(waitFor):
		// The program still holds something of the worker's: the
		// delivery cannot end before it does.
		syscall.Kill(sleeper, syscall.SIGKILL)
		r = <-done
		t.Errorf("Run did not end when the worker was killed, only when its program was")
	}
	if !r.handled || r.res != (worker.Result{Crashed: true}) {
		t.Errorf("Run = %+v, handled %v; want a crash", r.res, r.handled)
	}
	if r.out != "" {
		t.Errorf("output %q", r.out)
	}

	if got := viaWorker(t, p, lspawnCommand(home, u, box), message); got != (outcome{0, "did 1+0+0\n"}) {
		t.Fatalf("delivery after the crash: %+v", got)
	}
	entries := maildirNew(t, md)
	if len(entries) != 2 {
		t.Fatalf("%d messages in new/, want 2", len(entries))
	}
	second := entries[len(entries)-1]
	if second.pid == first || second.seq != 1 || !isWorker(second.pid) {
		t.Errorf("delivery after the crash went to %q: want a new worker (not pid %d)", second.name, first)
	}
	waitUntil(t, "the killed worker to be reaped", func() bool { return gone(first) })
}

// A wrapper installed as bin/qmail-local (one that signs mail, say) is
// run once per delivery, never bypassed by a worker.
func TestWorkerNotForWrapper(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t)
	real := testenv.Program(t, "qmail-local")
	wrapper := "#!/bin/sh\necho wrapped\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(home, "bin", "qmail-local"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	u, md := newMaildirUser(t)
	p := newPool(t)
	for i := 0; i < 2; i++ {
		var out bytes.Buffer
		if res, handled := p.Run(lspawnCommand(home, u, delivery{}), messageFile(t, message), &out); handled {
			t.Fatalf("run %d: handled by a worker: %+v %q", i, res, out.String())
		}
		if out.Len() != 0 {
			t.Errorf("run %d: output %q", i, out.String())
		}
	}
	if entries := maildirNew(t, md); len(entries) != 0 {
		t.Errorf("delivered: %v", entries)
	}
	// The caller runs it: the wrapper's output shows it ran.
	if got := viaExec(t, lspawnCommand(home, u, delivery{}), message); got != (outcome{0, "wrapped\ndid 1+0+0\n"}) {
		t.Errorf("wrapper run: %+v", got)
	}
}

// Close ends the idle workers and waits for them: no process is left.
func TestWorkerClose(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	u, md := newMaildirUser(t)
	// One delivery per worker, two at a time: two workers for one
	// account.
	p := worker.NewPool(io.Discard, time.Hour, 100, 1)
	defer p.Close()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			res, handled := p.Run(lspawnCommand(home, u, delivery{}), messageFile(t, message), &out)
			if !handled || res != (worker.Result{}) || out.String() != "did 1+0+0\n" {
				t.Errorf("Run = %+v, handled %v, output %q", res, handled, out.String())
			}
		}()
	}
	wg.Wait()
	var pids []int
	for _, e := range maildirNew(t, md) {
		pids = append(pids, e.pid)
		if !isWorker(e.pid) {
			t.Errorf("pid %d of %q is not a running worker", e.pid, e.name)
		}
	}
	if len(pids) != 2 {
		t.Fatalf("%d messages in new/, want 2", len(pids))
	}
	p.Close()
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("worker %d still there after Close", pid)
		}
	}
}

// An idle worker ends after the idle timeout.
func TestWorkerIdleTimeout(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	u, md := newMaildirUser(t)
	p := worker.NewPool(io.Discard, time.Millisecond, 100, worker.LocalPerWorker)
	defer p.Close()
	if got := viaWorker(t, p, lspawnCommand(home, u, delivery{}), message); got != (outcome{0, "did 1+0+0\n"}) {
		t.Fatalf("delivery: %+v", got)
	}
	pid := maildirNew(t, md)[0].pid
	waitUntil(t, "the idle worker to end", func() bool { return gone(pid) })
	if got := viaWorker(t, p, lspawnCommand(home, u, delivery{}), message); got != (outcome{0, "did 1+0+0\n"}) {
		t.Fatalf("delivery after the timeout: %+v", got)
	}
}

// A worker that died while idle (killed by an administrator or the
// out-of-memory killer) is not handed the next delivery: that delivery
// was never tried, it must not be reported as a crash.
func TestWorkerDiedIdle(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	u, md := newMaildirUser(t)
	p := newPool(t)
	if got := viaWorker(t, p, lspawnCommand(home, u, delivery{}), message); got != (outcome{0, "did 1+0+0\n"}) {
		t.Fatalf("delivery: %+v", got)
	}
	first := maildirNew(t, md)[0].pid
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the killed worker to be reaped", func() bool { return gone(first) })
	if got := viaWorker(t, p, lspawnCommand(home, u, delivery{}), message); got != (outcome{0, "did 1+0+0\n"}) {
		t.Fatalf("delivery after the worker died: %+v", got)
	}
	if entries := maildirNew(t, md); len(entries) != 2 || entries[1].pid == first {
		t.Errorf("box/new: %+v: want a second delivery by a new worker", entries)
	}
}

// durabilityHelperEnv makes the test binary, run under strace by
// TestWorkerDurability, the delivering side: "QMAILHOME:USERHOME".
const durabilityHelperEnv = "GOQMAIL_TEST_WORKER_DURABILITY"

// A delivery a worker answers 0 for (qmail-lspawn's K) is durable
// before the answer, as with qmail-local: the message file is fsynced
// in tmp/, linked into new/, new/ is fsynced, and only then does the
// worker answer. The syscalls are watched with strace, which runs the
// whole delivering side (this test binary, the pool, the worker) as its
// descendants.
func TestWorkerDurability(t *testing.T) {
	if env := os.Getenv(durabilityHelperEnv); env != "" {
		qmailHome, userHome, _ := strings.Cut(env, ":")
		u := &user{t: t, home: userHome}
		p := newPool(t)
		if got := viaWorker(t, p, lspawnCommand(qmailHome, u, delivery{}), message); got != (outcome{0, "did 1+0+0\n"}) {
			t.Fatalf("delivery: %+v", got)
		}
		return
	}
	t.Parallel()
	strace := testenv.Tool(t, "strace", "strace")
	home := testenv.NewHome(t, "qmail-local")
	u, md := newMaildirUser(t)
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-qq", "-y", "-o", trace, "-e", "signal=none",
		"-e", "trace=fsync,fdatasync,sync,syncfs,link,linkat,rename,renameat,renameat2,write",
		os.Args[0], "-test.run=^TestWorkerDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), durabilityHelperEnv+"="+home+":"+u.home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper under strace: %v\n%s", err, out)
	}
	entries := maildirNew(t, md)
	if len(entries) != 1 {
		t.Fatalf("%d messages in new/, want 1", len(entries))
	}
	name := entries[0].name
	real, err := filepath.EvalSymlinks(md)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		what string
		re   *regexp.Regexp
	}{
		{"fsync of the message in tmp/", regexp.MustCompile(`\bf(data)?sync\([0-9]+<` + regexp.QuoteMeta(real+"/tmp/"+name) + `>\)`)},
		{"link into new/", regexp.MustCompile(`\blinkat\(AT_FDCWD(<[^>]*>)?, "[^"]*tmp/` + regexp.QuoteMeta(name) + `", AT_FDCWD(<[^>]*>)?, "[^"]*new/` + regexp.QuoteMeta(name) + `", 0\)`)},
		{"fsync of new/", regexp.MustCompile(`\bf(data)?sync\([0-9]+<` + regexp.QuoteMeta(real+"/new") + `>\)`)},
		// The request's tag, exit code 0, no flags, the report.
		{"the answer 0 to the spawner", regexp.MustCompile(`\bwrite\([0-9]+<socket:\[[0-9]+\]>, "(\\[0-7]+|[^"\\]){4}\\0\\0did 1\+0\+0\\n", 16[) ]`)},
	}
	lines := strings.Split(readFile(t, trace), "\n")
	at := 0
	for _, step := range steps {
		found := false
		for ; at < len(lines); at++ {
			if step.re.MatchString(lines[at]) {
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("no %s (after the steps before it) in the worker's system calls:\n%s", step.what, strings.Join(lines, "\n"))
		}
	}
}

// Deliveries under way at the same time share a worker; every message
// lands once, under a name of its own.
func TestWorkerConcurrent(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	u, md := newMaildirUser(t)
	p := newPool(t)
	const goroutines, each = 4, 3
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		msgs := make([]*os.File, each)
		for i := range msgs {
			msgs[i] = messageFile(t, fmt.Sprintf("Subject: %d-%d\n\nbody\n", g, i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, msg := range msgs {
				var out bytes.Buffer
				res, handled := p.Run(lspawnCommand(home, u, delivery{}), msg, &out)
				if !handled || res != (worker.Result{}) || out.String() != "did 1+0+0\n" {
					t.Errorf("Run = %+v, handled %v, output %q", res, handled, out.String())
				}
			}
		}()
	}
	wg.Wait()
	entries := maildirNew(t, md)
	if len(entries) != goroutines*each {
		t.Fatalf("%d messages in new/, want %d", len(entries), goroutines*each)
	}
	subjects := map[string]bool{}
	workers := map[int]bool{}
	for _, e := range entries {
		workers[e.pid] = true
		body := readFile(t, filepath.Join(md, "new", e.name))
		subject, _, _ := strings.Cut(strings.TrimPrefix(body, "Return-Path: <>\nDelivered-To: bob@example.org\n"), "\n")
		if subjects[subject] {
			t.Errorf("%s delivered twice", subject)
		}
		subjects[subject] = true
	}
	// One account, fewer deliveries at a time than a worker runs: one
	// worker for them all.
	if len(workers) != 1 {
		t.Errorf("%d workers for %d deliveries at a time, want 1", len(workers), goroutines)
	}
}

// One worker runs deliveries for two homes of one account at the same
// time (virtual users sharing a uid), and neither resolves its .qmail
// file, its maildir or its program's working directory against the
// other's home: a worker does not change its working directory.
func TestWorkerTwoHomesAtOnce(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	signals := t.TempDir()
	started, secondDone := filepath.Join(signals, "first-started"), filepath.Join(signals, "second-done")
	first, second := newUser(t), newUser(t)
	firstMD, secondMD := first.maildir("Maildir"), second.maildir("Maildir")
	// The first delivery waits in its program until the second one is
	// over, then writes into its own maildir.
	first.write(".qmail", "|pwd > pwd.out; touch '"+started+"'; while [ ! -e '"+secondDone+"' ]; do sleep 0.01; done\n./Maildir/\n", 0o644)
	second.write(".qmail", "./Maildir/\n|pwd > pwd.out; touch '"+secondDone+"'\n", 0o644)
	p := newPool(t)
	var wg sync.WaitGroup
	for _, u := range []*user{first, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			res, handled := p.Run(lspawnCommand(home, u, delivery{}), messageFile(t, message), &out)
			if !handled || res != (worker.Result{}) || out.String() != "did 1+0+1\n" {
				t.Errorf("%s: Run = %+v, handled %v, output %q", u.home, res, handled, out.String())
			}
		}()
		if u == first {
			waitUntil(t, "the first delivery's program", func() bool { _, err := os.Stat(started); return err == nil })
		}
	}
	wg.Wait()
	var pids []int
	for _, u := range []struct {
		*user
		md string
	}{{first, firstMD}, {second, secondMD}} {
		entries := maildirNew(t, u.md)
		if len(entries) != 1 {
			t.Fatalf("%s: %d messages, want 1", u.md, len(entries))
		}
		pids = append(pids, entries[0].pid)
		if got := u.read("pwd.out"); got != u.home+"\n" {
			t.Errorf("program of %s ran in %q", u.home, got)
		}
	}
	if pids[0] != pids[1] || !isWorker(pids[0]) {
		t.Errorf("delivered by %v: want one worker", pids)
	}
}

// As root, a worker runs with the ids of the command it stands for, and
// each account has its own workers.
func TestWorkerCredentials(t *testing.T) {
	testenv.Root(t)
	t.Parallel()
	home := testenv.NewHome(t, "qmail-local")
	// The accounts must reach the program and the qmail home.
	bin, err := filepath.EvalSymlinks(filepath.Join(home, "bin", "qmail-local"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Dir(bin), home, filepath.Dir(home)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	type account struct {
		uid  uint32
		u    *user
		md   string
		sent int
	}
	accounts := []*account{{uid: 61001}, {uid: 61002}}
	for _, a := range accounts {
		a.u, a.md = newMaildirUser(t)
		for _, p := range []string{a.u.home, a.md, filepath.Join(a.md, "tmp"), filepath.Join(a.md, "new"), filepath.Join(a.md, "cur")} {
			if err := os.Chown(p, int(a.uid), int(a.uid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := newPool(t)
	for _, i := range []int{0, 1, 0, 1, 0} {
		a := accounts[i]
		cmd := lspawnCommand(home, a.u, delivery{})
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: a.uid, Gid: a.uid, Groups: []uint32{}},
		}
		if got := viaWorker(t, p, cmd, message); got != (outcome{0, "did 1+0+0\n"}) {
			t.Fatalf("delivery as %d: %+v", a.uid, got)
		}
		a.sent++
	}
	var pids []int
	for _, a := range accounts {
		entries := maildirNew(t, a.md)
		if len(entries) != a.sent {
			t.Fatalf("uid %d: %d messages, want %d", a.uid, len(entries), a.sent)
		}
		for i, e := range entries {
			if e.pid != entries[0].pid || e.seq != i+1 {
				t.Errorf("uid %d: %q: want one worker, sequence %d", a.uid, e.name, i+1)
			}
			st, err := os.Stat(filepath.Join(a.md, "new", e.name))
			if err != nil {
				t.Fatal(err)
			}
			if sys := st.Sys().(*syscall.Stat_t); sys.Uid != a.uid || sys.Gid != a.uid {
				t.Errorf("%s owned by %d:%d, want %d:%d", e.name, sys.Uid, sys.Gid, a.uid, a.uid)
			}
		}
		pid := entries[0].pid
		pids = append(pids, pid)
		status := readFile(t, fmt.Sprintf("/proc/%d/status", pid))
		for _, want := range []string{
			fmt.Sprintf(`\nUid:\t%d\t%d\t%d\t%d\n`, a.uid, a.uid, a.uid, a.uid),
			fmt.Sprintf(`\nGid:\t%d\t%d\t%d\t%d\n`, a.uid, a.uid, a.uid, a.uid),
			`\nGroups:[ \t]*\n`, // none
		} {
			if !regexp.MustCompile(want).MatchString(status) {
				t.Errorf("worker %d of uid %d: no %q in its status:\n%s", pid, a.uid, want, status)
			}
		}
	}
	if pids[0] == pids[1] {
		t.Errorf("one worker %d for two accounts", pids[0])
	}
}

// Idle workers are bounded: past the pool's maximum the least recently
// used one ends, whatever account or program it was for.
func TestWorkerMaxIdle(t *testing.T) {
	t.Parallel()
	homes := []string{testenv.NewHome(t, "qmail-local"), testenv.NewHome(t, "qmail-local")}
	u, md := newMaildirUser(t)
	p := worker.NewPool(io.Discard, time.Hour, 1, worker.LocalPerWorker)
	defer p.Close()
	var pids []int
	for _, home := range homes {
		// Another qmail home: another program and directory, so
		// another worker.
		if got := viaWorker(t, p, lspawnCommand(home, u, delivery{}), message); got != (outcome{0, "did 1+0+0\n"}) {
			t.Fatalf("delivery: %+v", got)
		}
		for _, e := range maildirNew(t, md) {
			if len(pids) == 0 || e.pid != pids[0] {
				pids = append(pids, e.pid)
				break
			}
		}
	}
	if len(pids) != 2 {
		t.Fatalf("worker pids %v, want two", pids)
	}
	if pids[0] == pids[1] {
		t.Fatalf("one worker for two programs: %v", pids)
	}
	waitUntil(t, "the older idle worker to end", func() bool { return gone(pids[0]) })
	if gone(pids[1]) {
		t.Errorf("the newer idle worker %d ended too", pids[1])
	}
}
