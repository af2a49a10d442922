package queue_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
	"golang.org/x/sys/unix"
)

// queueRun is the outcome of one qmail-queue process.
type queueRun struct {
	code int // exit code, -1 when killed by a signal
	pid  int
}

// runQueue runs home's qmail-queue with msg on fd 0 and env on fd 1,
// through the command wrap when given (its last argument is followed
// by qmail-queue's path).
func runQueue(t *testing.T, home string, msg io.Reader, env []byte, wrap ...string) queueRun {
	t.Helper()
	envFile := filepath.Join(t.TempDir(), "envelope")
	if err := os.WriteFile(envFile, env, 0o600); err != nil {
		t.Fatal(err)
	}
	envIn, err := os.Open(envFile)
	if err != nil {
		t.Fatal(err)
	}
	defer envIn.Close()
	argv := append(wrap, filepath.Join(home, "bin", "qmail-queue"))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stdin = msg
	cmd.Stdout = envIn
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if stderr.Len() > 0 {
		t.Errorf("qmail-queue wrote to stderr: %q", stderr.String())
	}
	return queueRun{code: exitCode(t, err, cmd.ProcessState), pid: cmd.Process.Pid}
}

func exitCode(t *testing.T, err error, ps *os.ProcessState) int {
	t.Helper()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("waiting for qmail-queue: %v", err)
	}
	if ws := ps.Sys().(syscall.WaitStatus); ws.Signaled() {
		return -1
	}
	return ps.ExitCode()
}

// listQueue returns the regular files of the queue's message directories.
func listQueue(t *testing.T, qdir string) map[string][]string {
	t.Helper()
	files := map[string][]string{}
	for _, sub := range []string{"pid", "mess", "intd", "todo", "info", "local", "remote", "bounce"} {
		err := filepath.WalkDir(filepath.Join(qdir, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				files[sub] = append(files[sub], d.Name())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func assertEmptyQueue(t *testing.T, qdir string) {
	t.Helper()
	if files := listQueue(t, qdir); len(files) != 0 {
		t.Errorf("queue not empty: %v", files)
	}
}

// invokedAs is the Received line's "invoked ..." for the current uid, as
// the password database says.
func invokedAs(t *testing.T, uid int) string {
	t.Helper()
	for _, u := range []struct{ name, text string }{{"alias", "by alias"}, {"qmaild", "from network"}, {"qmails", "for bounce"}} {
		if pw, err := user.Lookup(u.name); err == nil && pw.Uid == strconv.Itoa(uid) {
			return u.text
		}
	}
	return "by uid " + strconv.Itoa(uid)
}

// receivedPattern matches qmail-queue's Received line for a process.
func receivedPattern(pid int, invoked string) *regexp.Regexp {
	return regexp.MustCompile(`^Received: \(qmail ` + strconv.Itoa(pid) + ` invoked ` + regexp.QuoteMeta(invoked) +
		`\); ([1-9]|[12][0-9]|3[01]) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] -0000\n`)
}

func TestQmailQueueWritesQueueFiles(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	qdir := filepath.Join(home, "queue")
	trigger, err := os.OpenFile(filepath.Join(qdir, "lock", "trigger"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer trigger.Close()

	msg := "From: a@example.org\nSubject: test\n\nhello\x00world\r\n.\n"
	env := "Fsender@example.org\x00Ta@example.org\x00Tb@example.net\x00\x00ignored"
	before := time.Now().UTC().Truncate(time.Second)
	run := runQueue(t, home, strings.NewReader(msg), []byte(env))
	after := time.Now().UTC()
	if run.code != 0 {
		t.Fatalf("exit %d", run.code)
	}
	files := listQueue(t, qdir)
	if len(files["todo"]) != 1 || len(files["intd"]) != 1 || len(files["mess"]) != 1 || len(files) != 3 {
		t.Fatalf("queue files %v, want one message in mess, intd, todo", files)
	}
	name := files["todo"][0]
	id, err := strconv.ParseUint(name, 10, 64)
	if err != nil {
		t.Fatalf("todo entry %q", name)
	}
	messPath := filepath.Join(qdir, "mess", strconv.FormatUint(id%23, 10), name)
	messInfo, err := os.Stat(messPath)
	if err != nil {
		t.Fatalf("mess file not in split dir %d: %v", id%23, err)
	}
	if ino := messInfo.Sys().(*syscall.Stat_t).Ino; ino != id {
		t.Errorf("mess/%s has inode %d", name, ino)
	}
	mess, err := os.ReadFile(messPath)
	if err != nil {
		t.Fatal(err)
	}
	invoked := invokedAs(t, os.Getuid())
	var received string
	for s := before; !s.After(after); s = s.Add(time.Second) {
		line := fmt.Sprintf("Received: (qmail %d invoked %s); %d %s %d %02d:%02d:%02d -0000\n",
			run.pid, invoked, s.Day(), s.Month().String()[:3], s.Year(), s.Hour(), s.Minute(), s.Second())
		if strings.HasPrefix(string(mess), line) {
			received = line
		}
	}
	if received == "" || string(mess) != received+msg {
		t.Errorf("mess file %q, want a Received line of pid %d between %v and %v, then %q", mess, run.pid, before, after, msg)
	}

	wantEnv := fmt.Sprintf("u%d\x00p%d\x00Fsender@example.org\x00Ta@example.org\x00Tb@example.net\x00", os.Getuid(), run.pid)
	todoPath := filepath.Join(qdir, "todo", name)
	intdPath := filepath.Join(qdir, "intd", name)
	for _, p := range []string{todoPath, intdPath} {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != wantEnv {
			t.Errorf("%s: %q, want %q", p, got, wantEnv)
		}
	}
	todoInfo, _ := os.Stat(todoPath)
	intdInfo, _ := os.Stat(intdPath)
	if !os.SameFile(todoInfo, intdInfo) {
		t.Errorf("todo/%s is not a link of intd/%s", name, name)
	}
	for p, fi := range map[string]os.FileInfo{"mess": messInfo, "todo": todoInfo} {
		if fi.Mode() != 0o644 {
			t.Errorf("%s file mode %v, want 0644", p, fi.Mode())
		}
	}
	if n := messInfo.Sys().(*syscall.Stat_t).Nlink; n != 1 {
		t.Errorf("mess file has %d links, want 1 (pid file removed)", n)
	}

	pulled := make([]byte, 8)
	n, err := trigger.Read(pulled)
	if err != nil || n != 1 || pulled[0] != 0 {
		t.Errorf("trigger: read %q, %v; want one NUL byte", pulled[:n], err)
	}
}

func TestQmailQueueBadInput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", queue.MaxAddr)
	longest := strings.Repeat("y", queue.MaxAddr-1)
	tests := []struct {
		name string
		msg  string
		env  string
		code int
	}{
		{"empty envelope", "m\n", "", 54},
		{"missing final NUL", "m\n", "Fs@x\x00Tr@y\x00", 54},
		{"envelope cut in an address", "m\n", "Fs@x\x00Tr@", 54},
		{"no F", "m\n", "Ts@x\x00\x00", 91},
		{"recipient record not T", "m\n", "Fs@x\x00Fr@y\x00\x00", 91},
		{"sender of 1003 bytes", "m\n", "F" + long + "\x00Tr@y\x00\x00", 11},
		{"recipient of 1003 bytes", "m\n", "Fs@x\x00Tr@y\x00T" + long + "\x00\x00", 11},
		{"addresses of 1002 bytes", "m\n", "F" + longest + "\x00T" + longest + "\x00\x00", 0},
		{"NUL in the message", "a\x00b\x00\n\x00", "Fs@x\x00Tr@y\x00\x00", 0},
		{"empty message, empty sender, no recipient", "", "F\x00\x00", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := testenv.NewHome(t, "qmail-queue")
			qdir := filepath.Join(home, "queue")
			run := runQueue(t, home, strings.NewReader(tt.msg), []byte(tt.env))
			if run.code != tt.code {
				t.Fatalf("exit %d, want %d", run.code, tt.code)
			}
			if tt.code != 0 {
				assertEmptyQueue(t, qdir)
				return
			}
			files := listQueue(t, qdir)
			if len(files["todo"]) != 1 {
				t.Fatalf("queue files %v", files)
			}
			name := files["todo"][0]
			id, _ := strconv.ParseUint(name, 10, 64)
			mess, err := os.ReadFile(queue.MessPath(qdir, id))
			if err != nil {
				t.Fatal(err)
			}
			_, body, _ := strings.Cut(string(mess), "\n")
			if body != tt.msg {
				t.Errorf("queued message %q, want %q", body, tt.msg)
			}
			todo, err := os.ReadFile(filepath.Join(qdir, "todo", name))
			if err != nil {
				t.Fatal(err)
			}
			wantEnv := fmt.Sprintf("u%d\x00p%d\x00", os.Getuid(), run.pid) + strings.TrimSuffix(tt.env, "\x00")
			if string(todo) != wantEnv {
				t.Errorf("todo %q, want %q", todo, wantEnv)
			}
		})
	}
}

// patternReader produces a deterministic message of a given size
// without holding it: numbered lines.
type patternReader struct {
	left int64
	line int
	buf  []byte
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if len(r.buf) == 0 {
		r.line++
		r.buf = fmt.Appendf(r.buf[:0], "line %09d: the quick brown fox jumps over the lazy dog\n", r.line)
	}
	n := copy(p, r.buf)
	if int64(n) > r.left {
		n = int(r.left)
	}
	r.buf = r.buf[n:]
	r.left -= int64(n)
	return n, nil
}

func TestQmailQueueStreamsBigMessage(t *testing.T) {
	t.Parallel()
	const size = 100 << 20
	home := testenv.NewHome(t, "qmail-queue")
	qdir := filepath.Join(home, "queue")
	want := sha256.New()
	io.Copy(want, &patternReader{left: size})
	// The peak RSS is measured by GNU time, which forks qmail-queue from
	// its own small process: the rusage of a child of the test process
	// would include the test process's own peak, inherited at exec.
	timeProg, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("GNU time (Debian package time): %v", err)
		}
		t.Skipf("GNU time (Debian package time): %v", err)
	}
	rssFile := filepath.Join(t.TempDir(), "rss")
	run := runQueue(t, home, &patternReader{left: size}, []byte("Fs@x\x00Tr@y\x00\x00"), timeProg, "-f", "%M", "-o", rssFile)
	if run.code != 0 {
		t.Fatalf("exit %d", run.code)
	}
	rss, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatal(err)
	}
	maxRSS, err := strconv.Atoi(strings.TrimSpace(string(rss)))
	if err != nil {
		t.Fatalf("GNU time reported %q", rss)
	}
	t.Logf("qmail-queue peak RSS %d KiB", maxRSS)
	// Holding the message would take 100 MiB; streaming takes the
	// runtime's few MiB and the copy buffer.
	if maxRSS > 32<<10 {
		t.Errorf("qmail-queue peak RSS %d KiB for a %d MiB message", maxRSS, size>>20)
	}
	files := listQueue(t, qdir)
	if len(files["todo"]) != 1 {
		t.Fatalf("queue files %v", files)
	}
	id, _ := strconv.ParseUint(files["todo"][0], 10, 64)
	f, err := os.Open(queue.MessPath(qdir, id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var first [1]byte
	for first[0] != '\n' { // skip the Received line
		if _, err := f.Read(first[:]); err != nil {
			t.Fatal(err)
		}
	}
	got := sha256.New()
	if n, err := io.Copy(got, f); err != nil || n != size {
		t.Fatalf("queued %d bytes (%v), want %d", n, err, size)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("queued message differs from the one sent")
	}
}

// needRoot skips a test that needs root, except in CI where it fails.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must run as root: %s", why)
	}
	t.Skipf("needs root: %s", why)
}

func TestQmailQueueDiskFull(t *testing.T) {
	t.Parallel()
	needRoot(t, "mounting a small tmpfs")
	home := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", home).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", home).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	qdir := filepath.Join(home, "queue")
	if err := queue.Create(qdir, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile(testenv.Program(t, "qmail-queue"))
	if err != nil {
		t.Fatal(err)
	}
	// The program itself lives outside the small filesystem.
	binDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(binDir, "qmail-queue"), prog, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(binDir, "qmail-queue"), filepath.Join(home, "bin", "qmail-queue")); err != nil {
		t.Fatal(err)
	}
	free := func() uint64 {
		var st unix.Statfs_t
		if err := unix.Statfs(home, &st); err != nil {
			t.Fatal(err)
		}
		return st.Bfree
	}
	freeBefore := free()

	run := runQueue(t, home, &patternReader{left: 2 << 20}, []byte("Fs@x\x00Tr@y\x00\x00"))
	if run.code != 53 {
		t.Fatalf("exit %d for a message larger than the disk, want 53", run.code)
	}
	assertEmptyQueue(t, qdir)
	if got := free(); got != freeBefore {
		t.Errorf("%d free blocks after the failure, %d before: space not given back", got, freeBefore)
	}
	// With the space back, a message that fits is queued.
	if run := runQueue(t, home, &patternReader{left: 100 << 10}, []byte("Fs@x\x00Tr@y\x00\x00")); run.code != 0 {
		t.Errorf("exit %d after the disk-full failure", run.code)
	}
}

// TestQmailQueueFileSizeLimit: a write refused by RLIMIT_FSIZE is a
// write error (53), not death by SIGXFSZ, and leaves nothing behind.
func TestQmailQueueFileSizeLimit(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	qdir := filepath.Join(home, "queue")
	envFile := filepath.Join(t.TempDir(), "envelope")
	if err := os.WriteFile(envFile, []byte("Fs@x\x00Tr@y\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	// 128 blocks of 512 bytes: 64 KiB at most per file.
	cmd := exec.Command("/bin/sh", "-c", `ulimit -f 128 && exec "$0" 1<"$1"`,
		filepath.Join(home, "bin", "qmail-queue"), envFile)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stdin = &patternReader{left: 1 << 20}
	err := cmd.Run()
	if code := exitCode(t, err, cmd.ProcessState); code != 53 {
		t.Fatalf("exit %d (%v), want 53", code, cmd.ProcessState)
	}
	assertEmptyQueue(t, qdir)
}

// TestQmailQueueInvokedBy runs qmail-queue as the users that the
// Received line names: qmail's alias, qmaild and qmails.
func TestQmailQueueInvokedBy(t *testing.T) {
	t.Parallel()
	needRoot(t, "running qmail-queue as qmail's users")
	prog, err := os.ReadFile(testenv.Program(t, "qmail-queue"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ user, invoked string }{
		{"alias", "by alias"}, {"qmaild", "from network"}, {"qmails", "for bounce"}, {"nobody", ""},
	} {
		t.Run(tt.user, func(t *testing.T) {
			t.Parallel()
			pw, err := user.Lookup(tt.user)
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("user %s: %v (scripts/qmail-users.sh makes it)", tt.user, err)
				}
				t.Skipf("user %s: %v", tt.user, err)
			}
			uid, _ := strconv.Atoi(pw.Uid)
			gid, _ := strconv.Atoi(pw.Gid)
			if tt.invoked == "" {
				tt.invoked = "by uid " + pw.Uid
			}
			// A home the user can reach: t.TempDir's parent is private.
			home, err := os.MkdirTemp("", "goqmail-invoked-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(home) })
			if err := os.Chmod(home, 0o755); err != nil {
				t.Fatal(err)
			}
			qdir := filepath.Join(home, "queue")
			own := &queue.Owners{Qmailq: uid, Qmails: uid, Qmailr: uid, Qmail: gid}
			if err := queue.Create(qdir, own); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(home, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(home, "bin", "qmail-queue"), prog, 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(filepath.Join(home, "bin", "qmail-queue"))
			cmd.Env = append(os.Environ(), "QMAILHOME="+home)
			cmd.Stdin = strings.NewReader("hi\n")
			envR, envW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = envR
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			envR.Close()
			envW.WriteString("Fs@x\x00Tr@y\x00\x00")
			envW.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("qmail-queue as %s: %v", tt.user, err)
			}
			files := listQueue(t, qdir)
			if len(files["todo"]) != 1 {
				t.Fatalf("queue files %v", files)
			}
			id, _ := strconv.ParseUint(files["todo"][0], 10, 64)
			mess, err := os.ReadFile(queue.MessPath(qdir, id))
			if err != nil {
				t.Fatal(err)
			}
			if !receivedPattern(cmd.Process.Pid, tt.invoked).Match(mess) {
				t.Errorf("mess %q, want invoked %s", mess, tt.invoked)
			}
			todo, err := os.ReadFile(queue.FlatPath(qdir, "todo", id))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("u%d\x00p%d\x00", uid, cmd.Process.Pid); !strings.HasPrefix(string(todo), want) {
				t.Errorf("todo %q, want it to start %q", todo, want)
			}
		})
	}
}

// crashRun is one qmail-queue of the crash test.
type crashRun struct {
	pid    int
	msg    []byte
	env    string // as sent, final NUL included
	killed bool   // a SIGKILL was sent
	code   int    // exit code, -1 when killed
}

// TestQmailQueueCrash runs many qmail-queue at once and kills some of
// them at random moments, then checks that the queue holds only complete
// messages and that the cleanup reaps every leftover.
func TestQmailQueueCrash(t *testing.T) {
	t.Parallel()
	const runs, parallel = 200, 8
	home := testenv.NewHome(t, "qmail-queue", "qmail-clean")
	qdir := filepath.Join(home, "queue")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	type plan struct {
		run       *crashRun
		killMode  int // 0: none, 1: in the message, 2: in the envelope, 3: after the envelope
		killChunk int
		pause     time.Duration
	}
	const chunk = 16 << 10
	plans := make([]plan, runs)
	for i := range plans {
		size := rng.IntN(32*chunk) + 1
		msg := make([]byte, size)
		for j := range msg {
			msg[j] = byte(rng.UintN(256))
		}
		env := fmt.Sprintf("Frun-%d@crash.test\x00", i)
		for r := 0; r <= rng.IntN(3); r++ {
			env += fmt.Sprintf("Trcpt-%d-%d@crash.test\x00", i, r)
		}
		env += "\x00"
		p := plan{run: &crashRun{msg: msg, env: env}, killMode: rng.IntN(4)}
		if i == 0 {
			// At least one message is surely cut: more than a pipe
			// buffer (64 KiB) sent means qmail-queue made its file.
			p.killMode = 1
			p.run.msg = append(p.run.msg, make([]byte, 10*chunk)...)
		}
		if p.killMode == 1 {
			chunks := (len(p.run.msg) + chunk - 1) / chunk
			if chunks <= 5 {
				p.killMode = 2
			} else {
				p.killChunk = 5 + rng.IntN(chunks-5)
			}
		}
		p.pause = time.Duration(rng.IntN(3000)) * time.Microsecond
		plans[i] = p
	}

	prog := filepath.Join(home, "bin", "qmail-queue")
	execute := func(p plan) error {
		msgR, msgW, err := os.Pipe()
		if err != nil {
			return err
		}
		envR, envW, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd := exec.Command(prog)
		cmd.Env = append(os.Environ(), "QMAILHOME="+home)
		cmd.Stdin, cmd.Stdout = msgR, envR
		if err := cmd.Start(); err != nil {
			return err
		}
		msgR.Close()
		envR.Close()
		p.run.pid = cmd.Process.Pid
		kill := func() {
			p.run.killed = true
			cmd.Process.Signal(syscall.SIGKILL)
		}
		for off, n := 0, 0; off < len(p.run.msg); off, n = off+chunk, n+1 {
			if p.killMode == 1 && n == p.killChunk {
				kill()
				break
			}
			msgW.Write(p.run.msg[off:min(off+chunk, len(p.run.msg))])
		}
		msgW.Close()
		switch p.killMode {
		case 2:
			envW.WriteString(p.run.env[:len(p.run.env)/2])
			time.Sleep(p.pause)
			kill()
		case 3:
			envW.WriteString(p.run.env)
			time.Sleep(p.pause)
			kill()
		default:
			envW.WriteString(p.run.env)
		}
		envW.Close()
		err = cmd.Wait()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
		p.run.code = cmd.ProcessState.ExitCode()
		return nil
	}
	work := make(chan plan)
	errs := make(chan error, runs)
	for w := 0; w < parallel; w++ {
		go func() {
			for p := range work {
				errs <- execute(p)
			}
		}()
	}
	for _, p := range plans {
		work <- p
	}
	close(work)
	for range plans {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	byPid := map[int]*crashRun{}
	committed := 0
	for _, p := range plans {
		r := p.run
		byPid[r.pid] = r
		switch {
		case r.code == 0:
			committed++
		case r.code == -1 && r.killed:
		default:
			t.Errorf("run of pid %d exited %d (killed: %v)", r.pid, r.code, r.killed)
		}
	}
	t.Logf("%d runs, %d queued", runs, committed)

	// Every todo entry is a complete message with its complete envelope,
	// and every run that exited 0 has one.
	uid := os.Getuid()
	invoked := invokedAs(t, uid)
	queued := map[int]bool{}
	files := listQueue(t, qdir)
	for _, name := range files["todo"] {
		id, _ := strconv.ParseUint(name, 10, 64)
		todo, err := os.ReadFile(filepath.Join(qdir, "todo", name))
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if _, err := fmt.Sscanf(string(todo), "u%d\x00p%d\x00", new(int), &pid); err != nil || byPid[pid] == nil {
			t.Errorf("todo/%s: %q names no run", name, todo)
			continue
		}
		r := byPid[pid]
		queued[pid] = true
		if want := fmt.Sprintf("u%d\x00p%d\x00", uid, pid) + strings.TrimSuffix(r.env, "\x00"); string(todo) != want {
			t.Errorf("todo/%s: %q, want %q", name, todo, want)
		}
		mess, err := os.ReadFile(queue.MessPath(qdir, id))
		if err != nil {
			t.Errorf("todo/%s without its message: %v", name, err)
			continue
		}
		loc := receivedPattern(pid, invoked).FindIndex(mess)
		if loc == nil || !bytes.Equal(mess[loc[1]:], r.msg) {
			t.Errorf("mess of todo/%s (pid %d) is not the complete message", name, pid)
		}
	}
	for _, p := range plans {
		if p.run.code == 0 && !queued[p.run.pid] {
			t.Errorf("run of pid %d exited 0 but is not in todo/", p.run.pid)
		}
	}
	// Nothing in intd/ without its message.
	for _, name := range files["intd"] {
		id, _ := strconv.ParseUint(name, 10, 64)
		if _, err := os.Stat(queue.MessPath(qdir, id)); err != nil {
			t.Errorf("intd/%s without its message", name)
		}
	}
	leftovers := len(files["mess"]) - len(files["todo"])
	t.Logf("%d leftovers in mess/, %d in pid/", leftovers, len(files["pid"]))
	if leftovers < 1 {
		t.Errorf("no killed run left a message behind: the test did not test the cleanup")
	}

	// The cleanup, 36 hours later: the files are made 37 hours old, then
	// the real qmail-clean sweeps pid/ at startup and removes, on command,
	// the leftovers ScanLeftovers finds.
	old := time.Now().Add(-queue.StaleAge - time.Hour)
	for _, sub := range []string{"pid", "mess"} {
		filepath.WalkDir(filepath.Join(qdir, sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				os.Chtimes(p, old, old)
			}
			return err
		})
	}
	clean := exec.Command(filepath.Join(home, "bin", "qmail-clean"))
	clean.Env = append(os.Environ(), "QMAILHOME="+home)
	toClean, err := clean.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	fromClean, err := clean.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := clean.Start(); err != nil {
		t.Fatal(err)
	}
	client := queue.NewCleanClient(toClean, fromClean)
	swept := 0
	err = queue.ScanLeftovers(qdir, time.Now(), func(id uint64) error {
		reply, err := client.Clean(queue.CleanFoop, id)
		if err != nil {
			return err
		}
		if reply != queue.CleanOK {
			t.Errorf("qmail-clean foop/%d: %q", id, reply)
		}
		swept++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	toClean.Close()
	if err := clean.Wait(); err != nil {
		t.Fatalf("qmail-clean: %v", err)
	}
	if swept != leftovers {
		t.Errorf("swept %d leftovers, want %d", swept, leftovers)
	}
	after := listQueue(t, qdir)
	if len(after["pid"]) != 0 {
		t.Errorf("pid/ keeps %v", after["pid"])
	}
	if len(after["mess"]) != len(after["todo"]) || len(after["todo"]) != len(files["todo"]) {
		t.Errorf("after the cleanup: %d in mess/, %d in todo/; want %d in both",
			len(after["mess"]), len(after["todo"]), len(files["todo"]))
	}
	for _, name := range after["intd"] {
		if _, err := os.Stat(filepath.Join(qdir, "todo", name)); err != nil {
			t.Errorf("intd/%s kept without todo/%s", name, name)
		}
	}
}
