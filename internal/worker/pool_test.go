package worker

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

// copyFile copies src to dst (made anew, so a new inode) with mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func TestVerifier(t *testing.T) {
	t.Parallel()
	qmailLocal := testenv.Program(t, "qmail-local")
	dir := t.TempDir()
	script := filepath.Join(dir, "qmail-local.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec "+qmailLocal+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	trueCopy := filepath.Join(dir, "true")
	copyFile(t, "/bin/true", trueCopy, 0o755)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(qmailLocal, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		file, prog string
		want       bool
	}{
		{"own name", qmailLocal, "qmail-local", true},
		{"through a symlink", link, "qmail-local", true},
		{"another name", qmailLocal, "qmail-remote", false},
		{"a name that is not a program", qmailLocal, "", false},
		{"a path for a name", qmailLocal, "x/../qmail-local", false},
		{"full path for a name", qmailLocal, qmailLocal, false},
		{"shell script", script, "qmail-local", false},
		{"copy of /bin/true", trueCopy, "qmail-local", false},
		{"/bin/true", "/bin/true", "true", false},
		{"a directory", dir, "qmail-local", false},
		{"missing", filepath.Join(dir, "missing"), "qmail-local", false},
	}
	v := &Verifier{}
	for _, tt := range tests {
		// Twice: the remembered answer is the same.
		for i := 0; i < 2; i++ {
			if got := v.Speaks(tt.file, tt.prog); got != tt.want {
				t.Errorf("%s (%d): Speaks(%s, %q) = %v, want %v", tt.name, i, tt.file, tt.prog, got, tt.want)
			}
		}
	}
}

// The answer is remembered per file: replacing the file, in place or by
// a new one under the same name, is noticed.
func TestVerifierNoticesReplacement(t *testing.T) {
	t.Parallel()
	qmailLocal := testenv.Program(t, "qmail-local")
	installed := filepath.Join(t.TempDir(), "qmail-local")
	v := &Verifier{}
	speaks := func(step string, want bool) {
		t.Helper()
		if got := v.Speaks(installed, "qmail-local"); got != want {
			t.Fatalf("%s: Speaks = %v, want %v", step, got, want)
		}
	}
	copyFile(t, qmailLocal, installed, 0o755)
	speaks("goqmail's qmail-local", true)

	copyFile(t, "/bin/true", installed, 0o755)
	speaks("replaced by /bin/true", false)

	copyFile(t, qmailLocal, installed, 0o755)
	speaks("goqmail's again", true)

	// Overwritten in place (same inode) by a wrapper script.
	wrapper := []byte("#!/bin/sh\nexec /usr/local/bin/qmail-local \"$@\"\n")
	if err := os.WriteFile(installed, wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	speaks("overwritten by a wrapper", false)

	b, err := os.ReadFile(qmailLocal)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(installed, b, 0o755); err != nil {
		t.Fatal(err)
	}
	speaks("overwritten by goqmail's", true)

	// A goqmail program that did not start as a worker (refuse) runs
	// once per delivery until the file changes.
	v.refuse(installed)
	speaks("refused", false)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(installed, later, later); err != nil {
		t.Fatal(err)
	}
	speaks("touched after refusal", true)
}

// syncBuffer is a log written to by the pool's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A command a worker cannot stand for is left to the caller, without
// starting anything.
func TestRunRefuses(t *testing.T) {
	t.Parallel()
	qmailLocal := testenv.Program(t, "qmail-local")
	dir := t.TempDir()
	script := filepath.Join(dir, "qmail-local")
	// Were it run, it would leave a trace.
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch "+filepath.Join(dir, "ran")+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	cmdOf := func(path string, change func(*exec.Cmd)) *exec.Cmd {
		cmd := exec.Command(path, qmailLocalArgs...)
		cmd.Args[0] = "qmail-local"
		cmd.Dir = dir
		change(cmd)
		return cmd
	}
	tests := []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"wrapper script", cmdOf(script, func(*exec.Cmd) {})},
		{"own environment", cmdOf(qmailLocal, func(c *exec.Cmd) { c.Env = os.Environ() })},
		{"own stdin", cmdOf(qmailLocal, func(c *exec.Cmd) { c.Stdin = stdin })},
		{"another name", cmdOf(qmailLocal, func(c *exec.Cmd) { c.Args[0] = "qmail-remote" })},
		{"NUL in an argument", cmdOf(qmailLocal, func(c *exec.Cmd) { c.Args[3] = "a\x00b" })},
		{"too many arguments", cmdOf(qmailLocal, func(c *exec.Cmd) { c.Args = append(c.Args, make([]string, maxArgs)...) })},
	}
	log := &syncBuffer{}
	p := NewPool(log, time.Hour, 100, LocalPerWorker)
	defer p.Close()
	for _, tt := range tests {
		var out bytes.Buffer
		if res, handled := p.Run(tt.cmd, stdin, &out); handled {
			t.Errorf("%s: handled by a worker: %+v %q", tt.name, res, out.String())
		}
		if out.Len() > 0 {
			t.Errorf("%s: output %q", tt.name, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Errorf("the wrapper script was run")
	}
	p.mu.Lock()
	n := len(p.procs)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d workers started", n)
	}
	if log.String() != "" {
		t.Errorf("log %q", log.String())
	}
}

// A goqmail program that does not start as a worker (qmail-showctl has
// no --worker) is run once per delivery from then on, and the pool says
// so once.
func TestRunNoHello(t *testing.T) {
	t.Parallel()
	showctl := testenv.Program(t, "qmail-showctl")
	home := testenv.NewHome(t)
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	log := &syncBuffer{}
	p := NewPool(log, time.Hour, 100, LocalPerWorker)
	for i := 0; i < 2; i++ {
		cmd := exec.Command(showctl)
		cmd.Args[0] = "qmail-showctl"
		cmd.Dir = home
		if res, handled := p.Run(cmd, stdin, io.Discard); handled {
			t.Errorf("run %d: handled by a worker: %+v", i, res)
		}
	}
	p.Close()
	if got := strings.Count(log.String(), "worker: qmail-showctl: no worker hello; running it once per delivery\n"); got != 1 {
		t.Errorf("log %q: want the refusal once", log.String())
	}
}

// fakeWorker adds to p, as if p had started it for cmd, a worker served
// in this process by deliver, up to limit deliveries at a time. Its
// Serve's result arrives on the channel.
func fakeWorker(t *testing.T, p *Pool, cmd *exec.Cmd, limit int, deliver func(*Request) int) <-chan error {
	t.Helper()
	spawner, w := connPair(t)
	done := serve(w, limit, deliver)
	readHello(t, spawner)
	k := mustKey(t, cmd)
	fake := &proc{
		key: k, conn: spawner, lastUsed: time.Now(),
		exited: make(chan struct{}), ready: make(chan struct{}),
		waiting: make(map[uint32]chan answer),
	}
	close(fake.ready)
	go fake.readAnswers()
	p.mu.Lock()
	p.procs[k] = append(p.procs[k], fake)
	p.idleCount++
	p.mu.Unlock()
	return done
}

// fakeCommand is a command the pool takes for a worker's (goqmail's
// qmail-local), with args as its arguments.
func fakeCommand(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(testenv.Program(t, "qmail-local"), args...)
	cmd.Args[0] = "qmail-local"
	cmd.Dir = "/"
	return cmd
}

// Deliveries under way at the same time for one key share one worker,
// up to the pool's number per worker: no other worker is started.
func TestPoolSharesWorker(t *testing.T) {
	t.Parallel()
	log := &syncBuffer{}
	p := NewPool(log, time.Hour, 10, 2)
	defer p.Close()
	both := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(2)
	fakeWorker(t, p, fakeCommand(t), 2, func(r *Request) int {
		arrived.Done()
		<-both
		io.WriteString(r.Out, "did "+r.Args[0]+"\n")
		return 0
	})
	go func() { arrived.Wait(); close(both) }()
	var runs sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		runs.Add(1)
		go func() {
			defer runs.Done()
			var out bytes.Buffer
			res, handled := p.Run(fakeCommand(t, name), devNull(t), &out)
			if !handled || res != (Result{}) || out.String() != "did "+name+"\n" {
				t.Errorf("Run %s = %+v, handled %v, output %q", name, res, handled, out.String())
			}
		}()
	}
	select {
	case <-both:
	case <-time.After(time.Minute):
		t.Fatal("the two deliveries were not under way in the worker at once")
	}
	runs.Wait()
	p.mu.Lock()
	n, idle := len(p.procs[mustKey(t, fakeCommand(t))]), p.idleCount
	p.mu.Unlock()
	if n != 1 || idle != 1 {
		t.Errorf("%d workers, %d idle; want the one, idle", n, idle)
	}
	if log.String() != "" {
		t.Errorf("log %q", log.String())
	}
}

// A worker that abandoned a delivery gets no more: the next delivery
// goes to another worker, and the retiring one's socket is closed once
// its deliveries are answered, which ends it although the abandoned
// delivery is still stuck.
func TestPoolRetiresAbandoningWorker(t *testing.T) {
	t.Parallel()
	p := NewPool(io.Discard, time.Hour, 10, 4)
	defer p.Close()
	stuck := make(chan struct{})
	defer close(stuck)
	retired := fakeWorker(t, p, fakeCommand(t), 4, func(r *Request) int {
		if r.Args[0] == "stuck" {
			io.WriteString(r.Out, "Timeout on maildir delivery. (#4.3.0)\n")
			r.Abandon(111)
			<-stuck
			return 0
		}
		t.Errorf("the retiring worker ran %q", r.Args[0])
		return 0
	})
	var out bytes.Buffer
	res, handled := p.Run(fakeCommand(t, "stuck"), devNull(t), &out)
	if !handled || res != (Result{ExitCode: 111}) || out.String() != "Timeout on maildir delivery. (#4.3.0)\n" {
		t.Errorf("abandoned delivery: %+v, handled %v, output %q", res, handled, out.String())
	}
	select {
	case err := <-retired:
		if err != nil {
			t.Errorf("retired worker's Serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the retiring worker was not ended")
	}
	ran := make(chan string, 1)
	fakeWorker(t, p, fakeCommand(t), 4, func(r *Request) int {
		ran <- r.Args[0]
		return 0
	})
	if res, handled := p.Run(fakeCommand(t, "next"), devNull(t), io.Discard); !handled || res != (Result{}) {
		t.Errorf("next delivery: %+v, handled %v", res, handled)
	}
	if got := <-ran; got != "next" {
		t.Errorf("the other worker ran %q", got)
	}
}

func mustKey(t *testing.T, cmd *exec.Cmd) key {
	t.Helper()
	k, ok := poolKey(cmd)
	if !ok {
		t.Fatalf("no pool key for %v", cmd.Args)
	}
	return k
}

func devNull(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
