package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// QueueCapture is a stand-in for qmail-queue ($QMAILQUEUE=Program): it
// stores each message it is given (fd 0) and its envelope (fd 1) in Dir,
// named by its process id, and exits with a chosen code.
type QueueCapture struct {
	Program string
	Dir     string
}

// Capture is one message a QueueCapture was given.
type Capture struct {
	Pid      string // the stand-in's process id: the "qp" its caller reports
	Message  string
	Envelope string
}

// CaptureQueue writes a QueueCapture exiting with exitCode in a new
// temporary directory.
func CaptureQueue(t testing.TB, exitCode int) *QueueCapture {
	t.Helper()
	dir := t.TempDir()
	return CaptureQueueAt(t, filepath.Join(dir, "capture-queue"), dir, exitCode)
}

// CaptureQueueAt writes the stand-in as the program script, storing into
// dir (created if missing).
func CaptureQueueAt(t testing.TB, script, dir string, exitCode int) *QueueCapture {
	t.Helper()
	if strings.ContainsAny(dir, "'\n") {
		t.Fatalf("capture directory %q: the script quotes it with '", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The message is renamed last: a reader never sees half of it.
	body := fmt.Sprintf("#!/bin/sh\nf='%s'/$$\n"+
		"cat > \"$f.part\" || exit 54\n"+
		"cat <&1 > \"$f.envelope\" || exit 54\n"+
		"mv \"$f.part\" \"$f.message\" || exit 54\n"+
		"exit %d\n", dir, exitCode)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return &QueueCapture{Program: script, Dir: dir}
}

// Captures returns the messages stored so far, ordered by file name.
func (q *QueueCapture) Captures(t testing.TB) []Capture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(q.Dir, "*.message"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []Capture
	for _, f := range files {
		base := strings.TrimSuffix(f, ".message")
		m, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e, err := os.ReadFile(base + ".envelope")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Capture{Pid: filepath.Base(base), Message: string(m), Envelope: string(e)})
	}
	return out
}

// Messages returns the stored messages and their envelopes.
func (q *QueueCapture) Messages(t testing.TB) (msgs, envs []string) {
	t.Helper()
	for _, c := range q.Captures(t) {
		msgs, envs = append(msgs, c.Message), append(envs, c.Envelope)
	}
	return msgs, envs
}

// Only returns the one message stored and its envelope, failing the
// test unless exactly one was.
func (q *QueueCapture) Only(t testing.TB) (message, envelope string) {
	t.Helper()
	c := q.Single(t)
	return c.Message, c.Envelope
}

// Ran says whether the stand-in was started at all, even if it stored
// nothing whole.
func (q *QueueCapture) Ran(t testing.TB) bool {
	t.Helper()
	for _, suffix := range []string{"part", "envelope", "message"} {
		files, err := filepath.Glob(filepath.Join(q.Dir, "*."+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) > 0 {
			return true
		}
	}
	return false
}

// Single returns the one message stored, failing the test unless
// exactly one was.
func (q *QueueCapture) Single(t testing.TB) Capture {
	t.Helper()
	c := q.Captures(t)
	if len(c) != 1 {
		t.Fatalf("%s holds %d messages, want 1", q.Dir, len(c))
	}
	return c[0]
}
