package queue_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

// startWriter runs home's qmail-queue (or program) in writer mode and
// stops it when the test ends; its log is the returned builder.
func startWriter(t *testing.T, home, program string) (*queue.Writer, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	w, err := queue.StartWriter(home, program, append(os.Environ(), "QMAILHOME="+home), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, log
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// queuedFiles maps each todo/ message of home to its mess/ and intd/
// contents.
func queuedFiles(t *testing.T, home string) map[string][2]string {
	t.Helper()
	q := filepath.Join(home, "queue")
	todo, err := os.ReadDir(filepath.Join(q, "todo"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, e := range todo {
		var id uint64
		fmt.Sscan(e.Name(), &id)
		mess, err := os.ReadFile(queue.MessPath(q, id))
		if err != nil {
			t.Fatal(err)
		}
		intd, err := os.ReadFile(queue.FlatPath(q, "intd", id))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = [2]string{string(mess), string(intd)}
	}
	return out
}

var receivedPid = regexp.MustCompile(`^Received: \(qmail ([0-9]+) invoked by uid ([0-9]+)\); [0-9]+ [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} -0000\n`)

// normalise replaces the qp and date of a queued message and the p
// record of its envelope, the only parts that differ between two runs.
func normalise(files [2]string) [2]string {
	mess := receivedPid.ReplaceAllString(files[0], "Received: (qmail QP invoked by uid $2); DATE\n")
	intd := regexp.MustCompile(`\x00p[0-9]+\x00`).ReplaceAllString(files[1], "\x00pQP\x00")
	return [2]string{mess, intd}
}

// TestWriterQueuesLikeQmailQueue: concurrent messages through one writer
// land in the queue exactly as qmail-queue runs put them there, apart
// from the qp and the date; the qp is the writer's pid.
func TestWriterQueuesLikeQmailQueue(t *testing.T) {
	t.Parallel()
	viaWriter := testenv.NewHome(t, "qmail-queue")
	viaExec := testenv.NewHome(t, "qmail-queue")
	w, log := startWriter(t, viaWriter, filepath.Join(viaWriter, "bin", "qmail-queue"))
	const n = 16
	message := func(i int) string {
		return fmt.Sprintf("Subject: %d\n\n%s\n", i, strings.Repeat(fmt.Sprintf("line %d of a long enough body\n", i), 3000*(i%3)))
	}
	rcpts := func(i int) []string { return []string{fmt.Sprintf("r%d@example.org", i), "x@example.com"} }
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := w.Open()
			if err != nil {
				errs[i] = err
				return
			}
			if c.Pid() != w.Pid() {
				errs[i] = fmt.Errorf("qp %d, writer %d", c.Pid(), w.Pid())
			}
			c.WriteString(message(i))
			if err := c.Close(fmt.Sprintf("s%d@example.net", i), rcpts(i)); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	for i := range n {
		run := runQueue(t, viaExec, strings.NewReader(message(i)), []byte(queue.EncodeEnvelope(fmt.Sprintf("s%d@example.net", i), rcpts(i))))
		if run.code != 0 {
			t.Fatalf("qmail-queue exit %d", run.code)
		}
	}
	got, want := queuedFiles(t, viaWriter), queuedFiles(t, viaExec)
	if len(got) != n || len(want) != n {
		t.Fatalf("%d messages via the writer, %d via qmail-queue; log %q", len(got), len(want), log.String())
	}
	gotSet, wantSet := map[[2]string]bool{}, map[[2]string]bool{}
	for _, f := range got {
		m := receivedPid.FindStringSubmatch(f[0])
		if m == nil || m[1] != fmt.Sprint(w.Pid()) || m[2] != fmt.Sprint(os.Getuid()) {
			t.Errorf("Received line of %q", f[0][:min(len(f[0]), 80)])
		}
		if !strings.HasPrefix(f[1], fmt.Sprintf("u%d\x00p%d\x00", os.Getuid(), w.Pid())) {
			t.Errorf("envelope %q", f[1])
		}
		gotSet[normalise(f)] = true
	}
	for _, f := range want {
		wantSet[normalise(f)] = true
	}
	for f := range wantSet {
		if !gotSet[f] {
			t.Errorf("qmail-queue queued %q, the writer did not", f[1])
		}
	}
	for _, dir := range []string{"pid", "intd"} {
		left, _ := os.ReadDir(filepath.Join(viaWriter, "queue", dir))
		if dir == "pid" && len(left) != 0 {
			t.Errorf("left in pid/: %v", left)
		}
	}
}

// TestWriterExitCodes: a failure inside the writer reaches the caller as
// qmail-queue's exit code and text: a file size limit makes the writes
// fail (qq write error), a truncated envelope queues nothing.
func TestWriterExitCodes(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	// The writer under a 1 KiB file size limit (ulimit -f counts 512 or
	// 1024-byte blocks; 2 blocks is at most 2 KiB either way).
	wrapper := filepath.Join(home, "bin", "small-queue")
	script := "#!/bin/sh\nulimit -f 2\nexec " + filepath.Join(home, "bin", "qmail-queue") + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w, _ := startWriter(t, home, wrapper)
	c, err := w.Open()
	if err != nil {
		t.Fatal(err)
	}
	c.WriteString(strings.Repeat("a long message line\n", 10000))
	err = c.Close("a@example.org", []string{"b@example.org"})
	var qerr *queue.Error
	if !errors.As(err, &qerr) || qerr.ExitCode != queue.ExitWrite || qerr.Text != "qq write error or disk full (#4.3.0)" {
		t.Errorf("over the size limit: %v", err)
	}
	// A small message passes the same writer.
	c, err = w.Open()
	if err != nil {
		t.Fatal(err)
	}
	c.WriteString("Subject: small\n\nhi\n")
	if err := c.Close("a@example.org", []string{"b@example.org"}); err != nil {
		t.Errorf("small message: %v", err)
	}
	// Fail: the envelope is cut, nothing is queued.
	c, err = w.Open()
	if err != nil {
		t.Fatal(err)
	}
	c.WriteString("Subject: failed\n\n")
	c.Fail(errors.New("client went away"))
	if err := c.Close("a@example.org", []string{"b@example.org"}); err == nil {
		t.Error("a failed submission was queued")
	}
	if files := queuedFiles(t, home); len(files) != 1 {
		t.Errorf("%d messages queued, want 1", len(files))
	}
}

// TestWriterKilled: a writer killed with SIGKILL fails the message under
// way (never a success) and Open reports ErrWriterGone afterwards.
func TestWriterKilled(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	w, log := startWriter(t, home, filepath.Join(home, "bin", "qmail-queue"))
	c, err := w.Open()
	if err != nil {
		t.Fatal(err)
	}
	c.WriteString("Subject: under way\n\n")
	if err := syscall.Kill(w.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.WriteString("more\n")
	if err := c.Close("a@example.org", []string{"b@example.org"}); err == nil {
		t.Fatal("the message of a killed writer reported success")
	}
	w.Close() // returns once the writer has been reaped
	if _, err := w.Open(); !errors.Is(err, queue.ErrWriterGone) {
		t.Errorf("Open after the kill: %v", err)
	}
	if !strings.Contains(log.String(), "exited") {
		t.Errorf("log %q", log.String())
	}
	if files := queuedFiles(t, home); len(files) != 0 {
		t.Errorf("%d messages queued", len(files))
	}
}

// TestWriterInline: a message whose message and envelope fit an inline
// request goes in the request itself, a larger one (by its message or
// by its envelope) through the pipes; both land exactly as qmail-queue
// puts them.
func TestWriterInline(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	w, log := startWriter(t, home, filepath.Join(home, "bin", "qmail-queue"))
	oneRcpt := []string{"b@example.org"}
	envLen := len(queue.EncodeEnvelope("a@example.org", oneRcpt))
	manyRcpts := make([]string, 3000)
	for i := range manyRcpts {
		manyRcpts[i] = fmt.Sprintf("recipient%d@example.org", i)
	}
	body := func(n int) string { return strings.Repeat("x", n-1) + "\n" }
	tests := []struct {
		name   string
		msg    string
		rcpts  []string
		inline bool
	}{
		{"small", "Subject: small\n\nhi\n", oneRcpt, true},
		{"exactly the limit", body(queue.InlineMax - envLen), oneRcpt, true},
		{"one byte more", body(queue.InlineMax - envLen + 1), oneRcpt, false},
		{"large", body(3 * queue.InlineMax), oneRcpt, false},
		{"small with a large envelope", "Subject: many\n\nhi\n", manyRcpts, false},
	}
	for _, tt := range tests {
		c, err := w.Open()
		if err != nil {
			t.Fatal(err)
		}
		c.WriteString(tt.msg)
		if err := c.Close("a@example.org", tt.rcpts); err != nil {
			t.Fatalf("%s: %v; log %q", tt.name, err, log.String())
		}
		if got := queue.SentInline(c); got != tt.inline {
			t.Errorf("%s: inline %v, want %v", tt.name, got, tt.inline)
		}
	}
	queued := queuedFiles(t, home)
	if len(queued) != len(tests) {
		t.Fatalf("%d messages queued, want %d", len(queued), len(tests))
	}
	found := map[string]bool{}
	for _, f := range queued {
		for _, tt := range tests {
			mess := receivedPid.ReplaceAllString(f[0], "")
			// intd/N keeps the records, not the envelope's final NUL.
			env := "u" + fmt.Sprint(os.Getuid()) + "\x00p" + fmt.Sprint(w.Pid()) + "\x00" +
				strings.TrimSuffix(queue.EncodeEnvelope("a@example.org", tt.rcpts), "\x00")
			if mess == tt.msg && f[1] == env {
				found[tt.name] = true
			}
		}
	}
	for _, tt := range tests {
		if !found[tt.name] {
			t.Errorf("%s: not queued as sent", tt.name)
		}
	}
	if t.Failed() {
		for _, f := range queued {
			t.Logf("mess %q... intd %q...", f[0][:min(120, len(f[0]))], f[1][:min(120, len(f[1]))])
		}
	}
}
