package queue

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCleanCommand(t *testing.T) {
	tests := []struct {
		in string
		op CleanOp
		id uint64
		ok bool
	}{
		{"foop/1", CleanFoop, 1, true},
		{"todo/457", CleanTodo, 457, true},
		{"foop/007", CleanFoop, 7, true},
		{"todo/18446744073709551615", CleanTodo, 18446744073709551615, true},
		{"todo/18446744073709551616", 0, 0, false}, // out of range
		{"foop/", 0, 0, false},
		{"foop", 0, 0, false},
		{"", 0, 0, false},
		{"foop/12a", 0, 0, false},
		{"foop/-1", 0, 0, false},
		{"foop/+1", 0, 0, false},
		{"todoX12", 0, 0, false},
		{"mess/12", 0, 0, false},
		{"FOOP/12", 0, 0, false},
		{"foop/1 ", 0, 0, false},
		{"todo/" + strings.Repeat("0", 94), CleanTodo, 0, true}, // 100 bytes with the NUL
		{"todo/" + strings.Repeat("0", 95), 0, 0, false},        // 101
	}
	for _, tt := range tests {
		op, id, ok := ParseCleanCommand([]byte(tt.in))
		if op != tt.op || id != tt.id || ok != tt.ok {
			t.Errorf("ParseCleanCommand(%q) = %q %d %v, want %q %d %v", tt.in, op, id, ok, tt.op, tt.id, tt.ok)
		}
	}
}

func FuzzParseCleanCommand(f *testing.F) {
	for _, s := range []string{"foop/1", "todo/457", "foop/", "todo/12a", "x", "todo/99999999999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		op, id, ok := ParseCleanCommand(in)
		if !ok {
			return
		}
		// Whatever is accepted is exactly what qmail-send would write
		// for it, bar leading zeros.
		cmd := AppendCleanCommand(nil, op, id)
		trimmed := strings.TrimLeft(string(in[5:]), "0")
		if trimmed == "" {
			trimmed = "0"
		}
		if want := string(in[:5]) + trimmed + "\x00"; string(cmd) != want {
			t.Fatalf("accepted %q as %q", in, cmd)
		}
	})
}

// FuzzCleanServe feeds arbitrary input to the qmail-clean loop on an
// empty queue: one reply per complete command, and a '+' only for a
// well-formed one.
func FuzzCleanServe(f *testing.F) {
	for _, s := range []string{"foop/1\x00todo/2\x00", "x\x00", strings.Repeat("a", 300) + "\x00foop/3\x00", "todo/5"} {
		f.Add([]byte(s))
	}
	dir := newQueue(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		c := &Cleaner{Dir: dir}
		if err := c.Serve(bytes.NewReader(in), &out); err != nil {
			t.Fatal(err)
		}
		cmds := bytes.Split(in, []byte{0})
		cmds = cmds[:len(cmds)-1] // what follows the last NUL is no command
		if out.Len() != len(cmds) {
			t.Fatalf("%d replies to %d commands", out.Len(), len(cmds))
		}
		for i, cmd := range cmds {
			_, _, ok := ParseCleanCommand(cmd)
			want := byte(CleanMalformed)
			if ok {
				want = CleanOK
			}
			if out.Bytes()[i] != want {
				t.Fatalf("reply %q to %q", out.Bytes()[i], cmd)
			}
		}
	})
}

// touch makes a file and sets its atime and mtime.
func touch(t *testing.T, path string, when time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func fileExists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestCleanerServe(t *testing.T) {
	dir := newQueue(t)
	now := time.Now()
	for _, f := range []string{MessPath(dir, 100), FlatPath(dir, "intd", 100), MessPath(dir, 200),
		FlatPath(dir, "intd", 300), FlatPath(dir, "todo", 300), MessPath(dir, 300)} {
		touch(t, f, now)
	}
	// An unremovable intd/400: a non-empty directory.
	if err := os.MkdirAll(filepath.Join(FlatPath(dir, "intd", 400), "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	in := "foop/100\x00foop/200\x00todo/300\x00foop/999\x00todo/400\x00bogus\x00" +
		strings.Repeat("9", 5000) + "\x00foop/12a\x00todo/"
	var out bytes.Buffer
	c := &Cleaner{Dir: dir}
	if err := c.Serve(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if want := "++++!xxx"; out.String() != want {
		t.Errorf("replies %q, want %q", out.String(), want)
	}
	for _, gone := range []string{MessPath(dir, 100), FlatPath(dir, "intd", 100), MessPath(dir, 200),
		FlatPath(dir, "intd", 300), FlatPath(dir, "todo", 300)} {
		if fileExists(t, gone) {
			t.Errorf("%s not removed", gone)
		}
	}
	if !fileExists(t, MessPath(dir, 300)) {
		t.Errorf("todo/300 removed the message itself")
	}
}

func TestCleanerRemovesStalePids(t *testing.T) {
	dir := newQueue(t)
	now := time.Now()
	old := filepath.Join(dir, "pid", "11.1700000000.1")
	edge := filepath.Join(dir, "pid", "12.1700000000.1")
	fresh := filepath.Join(dir, "pid", "13.1700000000.1")
	touch(t, old, now.Add(-StaleAge-time.Hour))
	touch(t, edge, now.Add(-StaleAge))
	touch(t, fresh, now.Add(-StaleAge+time.Minute))
	c := &Cleaner{Dir: dir, Now: func() time.Time { return now }}
	// The sweep runs before the first command, then every 31 commands.
	if err := c.Serve(strings.NewReader(""), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if fileExists(t, old) || fileExists(t, edge) {
		t.Errorf("stale pid files kept")
	}
	if !fileExists(t, fresh) {
		t.Errorf("fresh pid file removed")
	}
	// A pid file gone stale while qmail-clean runs goes just before the
	// 32nd command, at the second sweep.
	calls := 0
	c.Now = func() time.Time {
		calls++
		if calls == 1 {
			return now
		}
		return now.Add(2 * time.Minute)
	}
	var commands strings.Builder
	for i := 0; i < 31; i++ {
		commands.WriteString("foop/1\x00")
	}
	r := &sweepProbe{t: t, path: fresh, data: []byte(commands.String() + "foop/1\x00")}
	if err := c.Serve(r, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if r.goneAt != 31 {
		t.Errorf("pid file swept after %d commands, want 31", r.goneAt)
	}
}

// sweepProbe feeds commands one at a time and records before which one
// path disappeared.
type sweepProbe struct {
	t      *testing.T
	path   string
	data   []byte
	served int
	goneAt int
}

func (p *sweepProbe) Read(b []byte) (int, error) {
	if p.goneAt == 0 && p.served > 0 && !fileExists(p.t, p.path) {
		p.goneAt = p.served
	}
	if len(p.data) == 0 {
		return 0, os.ErrClosed
	}
	i := bytes.IndexByte(p.data, 0) + 1
	n := copy(b, p.data[:i])
	p.data = p.data[n:]
	p.served++
	return n, nil
}

func TestLeftovers(t *testing.T) {
	dir := newQueue(t)
	now := time.Now()
	old := now.Add(-StaleAge - time.Second)
	// S2 and S3, old: leftovers.
	touch(t, MessPath(dir, 1), old)
	touch(t, MessPath(dir, 2), old)
	touch(t, FlatPath(dir, "intd", 2), old)
	// S2, young: a qmail-queue may still be writing it.
	touch(t, MessPath(dir, 3), now.Add(-time.Hour))
	// S4 and S5, old: queued messages.
	touch(t, MessPath(dir, 4), old)
	touch(t, FlatPath(dir, "todo", 4), old)
	touch(t, MessPath(dir, 5), old)
	touch(t, SplitPath(dir, "info", 5), old)
	// Not message files.
	touch(t, filepath.Join(dir, "mess", "6", "junk"), old)
	touch(t, filepath.Join(dir, "mess", "7", "7x"), old)
	// In the wrong split directory: qmail looks it up by number.
	touch(t, filepath.Join(dir, "mess", "8", "9"), old)

	ids, err := Leftovers(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if want := []uint64{1, 2}; !slices.Equal(ids, want) {
		t.Errorf("leftovers %v, want %v", ids, want)
	}
	// Moving the clock past 36 hours makes the young one stale too; the
	// cleaner's foop then removes message and intd.
	c := &Cleaner{Dir: dir}
	err = ScanLeftovers(dir, now.Add(StaleAge), func(id uint64) error {
		if r := c.Do(CleanFoop, id); r != CleanOK {
			t.Errorf("foop/%d: %q", id, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{MessPath(dir, 1), MessPath(dir, 2), FlatPath(dir, "intd", 2), MessPath(dir, 3)} {
		if fileExists(t, gone) {
			t.Errorf("%s kept", gone)
		}
	}
	for _, kept := range []string{MessPath(dir, 4), MessPath(dir, 5), filepath.Join(dir, "mess", "8", "9")} {
		if !fileExists(t, kept) {
			t.Errorf("%s removed", kept)
		}
	}
}

func TestCleanClient(t *testing.T) {
	var sent bytes.Buffer
	c := NewCleanClient(&sent, strings.NewReader("+!"))
	for _, tt := range []struct {
		op    CleanOp
		id    uint64
		reply byte
	}{{CleanFoop, 457, '+'}, {CleanTodo, 12, '!'}} {
		r, err := c.Clean(tt.op, tt.id)
		if err != nil || r != tt.reply {
			t.Errorf("Clean(%q, %d) = %q, %v; want %q", tt.op, tt.id, r, err, tt.reply)
		}
	}
	if want := "foop/457\x00todo/12\x00"; sent.String() != want {
		t.Errorf("sent %q, want %q", sent.String(), want)
	}
	if _, err := c.Clean(CleanFoop, 1); err == nil {
		t.Errorf("no error when qmail-clean is gone")
	}
}

// writeRecorder records each Write as one element.
type writeRecorder struct{ writes []string }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestCleanerServeBatches: the commands that arrive together are
// answered in one write; a command alone is answered before qmail-clean
// waits for the next one (or qmail-send would wait for ever).
func TestCleanerServeBatches(t *testing.T) {
	dir := newQueue(t)
	var out writeRecorder
	c := &Cleaner{Dir: dir}
	if err := c.Serve(strings.NewReader("foop/1\x00foop/2\x00todo/3\x00"), &out); err != nil {
		t.Fatal(err)
	}
	if want := []string{"+++"}; !slices.Equal(out.writes, want) {
		t.Errorf("writes %q, want %q", out.writes, want)
	}

	reqR, reqW := io.Pipe()
	repR, repW := io.Pipe()
	served := make(chan error, 1)
	go func() { served <- c.Serve(reqR, repW) }()
	for _, cmd := range []string{"foop/4\x00", "todo/5\x00"} {
		if _, err := io.WriteString(reqW, cmd); err != nil {
			t.Fatal(err)
		}
		var reply [1]byte
		if _, err := io.ReadFull(repR, reply[:]); err != nil || reply[0] != CleanOK {
			t.Fatalf("reply to %q: %q, %v", cmd, reply[:], err)
		}
	}
	reqW.Close()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
