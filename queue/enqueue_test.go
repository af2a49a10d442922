package queue

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReceivedLine(t *testing.T) {
	start := time.Date(2026, time.February, 3, 4, 5, 6, 0, time.UTC)
	tests := []struct {
		name string
		sub  Submission
		want string
	}{
		{"alias", Submission{UID: 7790, Account: "alias", PID: 42, Start: start},
			"Received: (qmail 42 invoked by alias); 3 Feb 2026 04:05:06 -0000\n"},
		{"network", Submission{UID: 7791, Account: "qmaild", PID: 42, Start: start},
			"Received: (qmail 42 invoked from network); 3 Feb 2026 04:05:06 -0000\n"},
		{"bounce", Submission{UID: 7792, Account: "qmails", PID: 42, Start: start},
			"Received: (qmail 42 invoked for bounce); 3 Feb 2026 04:05:06 -0000\n"},
		{"other account", Submission{UID: 1000, Account: "qmailq", PID: 123456, Start: start},
			"Received: (qmail 123456 invoked by uid 1000); 3 Feb 2026 04:05:06 -0000\n"},
		{"no account", Submission{UID: 0, PID: 1, Start: start},
			"Received: (qmail 1 invoked by uid 0); 3 Feb 2026 04:05:06 -0000\n"},
		{"names are case-sensitive", Submission{UID: 3, Account: "Alias", PID: 1, Start: start},
			"Received: (qmail 1 invoked by uid 3); 3 Feb 2026 04:05:06 -0000\n"},
		{"local zone converted to UTC", Submission{UID: 5, PID: 9,
			Start: time.Date(2025, time.December, 31, 23, 59, 59, 999, time.FixedZone("X", -3600))},
			"Received: (qmail 9 invoked by uid 5); 1 Jan 2026 00:59:59 -0000\n"},
		{"two-digit day", Submission{UID: 5, PID: 9,
			Start: time.Date(2026, time.November, 22, 0, 0, 0, 0, time.UTC)},
			"Received: (qmail 9 invoked by uid 5); 22 Nov 2026 00:00:00 -0000\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.sub.ReceivedLine()); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestQueuePaths(t *testing.T) {
	tests := []struct{ got, want string }{
		{MessPath(".", 457), "mess/20/457"},
		{MessPath("", 23), "mess/0/23"},
		{MessPath("/q", 22), "/q/mess/22/22"},
		{SplitPath("/q/", "info", 46), "/q/info/0/46"},
		{FlatPath(".", "todo", 457), "todo/457"},
		{FlatPath("/q", "intd", 1), "/q/intd/1"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestCopyEnvelope(t *testing.T) {
	long := strings.Repeat("a", MaxAddr)
	ok := strings.Repeat("b", MaxAddr-1)
	tests := []struct {
		name string
		in   string
		code int    // 0: success
		out  string // what an intd file gets, on success
	}{
		{"sender and recipients", "Fs@x\x00Ta@y\x00Tb@z\x00\x00", 0, "Fs@x\x00Ta@y\x00Tb@z\x00"},
		{"empty sender, no recipient", "F\x00\x00", 0, "F\x00"},
		{"empty recipient", "F\x00T\x00\x00", 0, "F\x00T\x00"},
		{"trailing bytes ignored", "Fs\x00\x00garbage", 0, "Fs\x00"},
		{"longest addresses", "F" + ok + "\x00T" + ok + "\x00\x00", 0, "F" + ok + "\x00T" + ok + "\x00"},
		{"empty", "", ExitRead, ""},
		{"no final NUL", "Fs@x\x00Ta@y\x00", ExitRead, ""},
		{"cut in sender", "Fs@", ExitRead, ""},
		{"cut in recipient", "Fs\x00Ta@", ExitRead, ""},
		{"just F", "F", ExitRead, ""},
		{"no F", "Ts@x\x00\x00", ExitEnvelope, ""},
		{"NUL first", "\x00", ExitEnvelope, ""},
		{"recipient not T", "Fs\x00Xa\x00\x00", ExitEnvelope, ""},
		{"second F", "Fs\x00Fa\x00\x00", ExitEnvelope, ""},
		{"sender too long", "F" + long + "\x00\x00", ExitAddrTooLong, ""},
		{"recipient too long", "Fs\x00T" + long + "\x00\x00", ExitAddrTooLong, ""},
		{"too long then EOF", "F" + long, ExitAddrTooLong, ""},
		{"one short then EOF", "F" + ok, ExitRead, ""},
		{"huge address", "F" + strings.Repeat("c", 1<<20), ExitAddrTooLong, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := bufio.NewWriter(&out)
			err := CopyEnvelope(w, bufio.NewReaderSize(strings.NewReader(tt.in), 4096))
			w.Flush()
			if got := ExitCode(err); got != tt.code {
				t.Fatalf("exit code %d (%v), want %d", got, err, tt.code)
			}
			if tt.code == 0 && out.String() != tt.out {
				t.Errorf("wrote %q, want %q", out.String(), tt.out)
			}
		})
	}
}

// FuzzCopyEnvelope checks CopyEnvelope against a direct reading of
// qmail-queue.c's loop: same verdict, and on success the same bytes.
func FuzzCopyEnvelope(f *testing.F) {
	for _, s := range []string{"Fs@x\x00Ta@y\x00\x00", "F\x00\x00", "", "X", "Fs\x00Xa\x00\x00",
		"F" + strings.Repeat("a", MaxAddr) + "\x00\x00", "Fa\x00T" + strings.Repeat("b", MaxAddr-1) + "\x00\x00x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		err := CopyEnvelope(w, bufio.NewReaderSize(bytes.NewReader(in), 4096))
		w.Flush()
		wantCode, wantOut := referenceEnvelope(in)
		if got := ExitCode(err); got != wantCode {
			t.Fatalf("exit code %d (%v), reference %d", got, err, wantCode)
		}
		if wantCode == 0 && !bytes.Equal(out.Bytes(), wantOut) {
			t.Fatalf("wrote %q, reference %q", out.Bytes(), wantOut)
		}
	})
}

// referenceEnvelope is qmail-queue.c's envelope loop, byte by byte.
func referenceEnvelope(in []byte) (int, []byte) {
	var out []byte
	pos := 0
	get := func() (byte, bool) {
		if pos >= len(in) {
			return 0, false
		}
		pos++
		return in[pos-1], true
	}
	addr := func() int {
		n := 0
		for ; n < MaxAddr; n++ {
			c, ok := get()
			if !ok {
				return ExitRead
			}
			out = append(out, c)
			if c == 0 {
				return 0
			}
		}
		return ExitAddrTooLong
	}
	c, ok := get()
	if !ok {
		return ExitRead, nil
	}
	if c != 'F' {
		return ExitEnvelope, nil
	}
	out = append(out, c)
	if code := addr(); code != 0 {
		return code, nil
	}
	for {
		c, ok := get()
		if !ok {
			return ExitRead, nil
		}
		if c == 0 {
			return 0, out
		}
		if c != 'T' {
			return ExitEnvelope, nil
		}
		out = append(out, c)
		if code := addr(); code != 0 {
			return code, nil
		}
	}
}

// newQueue makes an empty queue in a temporary directory.
func newQueue(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "queue")
	if err := Create(dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// queueFiles lists every regular file under the queue's message
// directories, relative to the queue.
func queueFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, sub := range []string{"pid", "mess", "intd", "todo", "info", "local", "remote", "bounce"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func testSubmission() Submission {
	return Submission{UID: 1234, PID: 5678, Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestEnqueue(t *testing.T) {
	dir := newQueue(t)
	msg := "Subject: x\n\nbody\x00with NUL\n"
	id, err := Enqueue(dir, strings.NewReader(msg), strings.NewReader("Fs@x\x00Tr@y\x00\x00"), testSubmission())
	if err != nil {
		t.Fatal(err)
	}
	mess, err := os.ReadFile(MessPath(dir, id))
	if err != nil {
		t.Fatal(err)
	}
	wantMess := "Received: (qmail 5678 invoked by uid 1234); 2 Jan 2026 03:04:05 -0000\n" + msg
	if string(mess) != wantMess {
		t.Errorf("mess: %q, want %q", mess, wantMess)
	}
	todo, err := os.ReadFile(FlatPath(dir, "todo", id))
	if err != nil {
		t.Fatal(err)
	}
	if want := "u1234\x00p5678\x00Fs@x\x00Tr@y\x00"; string(todo) != want {
		t.Errorf("todo: %q, want %q", todo, want)
	}
	want := []string{MessPath("", id), FlatPath("", "intd", id), FlatPath("", "todo", id)}
	if got := queueFiles(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("queue files %q, want %q", got, want)
	}
}

// failingReader gives some bytes, then an error.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestEnqueueFailureLeavesNothing checks that every failure Enqueue can
// meet in a writable queue takes back all it made.
func TestEnqueueFailureLeavesNothing(t *testing.T) {
	readErr := errors.New("connection reset")
	tests := []struct {
		name string
		msg  io.Reader
		env  io.Reader
		code int
	}{
		{"message read error", &failingReader{bytes.Repeat([]byte("m"), 300000), readErr}, strings.NewReader("Fs\x00\x00"), ExitRead},
		{"envelope read error", strings.NewReader("msg"), &failingReader{[]byte("Fs\x00Ta"), readErr}, ExitRead},
		{"envelope cut", strings.NewReader("msg"), strings.NewReader("Fs\x00Ta\x00"), ExitRead},
		{"bad envelope", strings.NewReader("msg"), strings.NewReader("Fs\x00Ua\x00\x00"), ExitEnvelope},
		{"address too long", strings.NewReader("msg"), strings.NewReader("Fs\x00T" + strings.Repeat("a", MaxAddr) + "\x00\x00"), ExitAddrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newQueue(t)
			_, err := Enqueue(dir, tt.msg, tt.env, testSubmission())
			if got := ExitCode(err); got != tt.code {
				t.Fatalf("exit code %d (%v), want %d", got, err, tt.code)
			}
			if files := queueFiles(t, dir); len(files) != 0 {
				t.Errorf("left behind: %q", files)
			}
		})
	}
}

// TestEnqueueDirectoryTrouble replaces one queue directory by a file, so
// that creating or linking there fails even for root.
func TestEnqueueDirectoryTrouble(t *testing.T) {
	tests := []struct {
		sub  string
		code int
	}{{"pid", ExitPid}, {"mess", ExitMess}, {"intd", ExitIntd}, {"todo", ExitTodo}}
	for _, tt := range tests {
		t.Run(tt.sub, func(t *testing.T) {
			dir := newQueue(t)
			p := filepath.Join(dir, tt.sub)
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Enqueue(dir, strings.NewReader("m"), strings.NewReader("Fs\x00\x00"), testSubmission())
			if got := ExitCode(err); got != tt.code {
				t.Fatalf("exit code %d (%v), want %d", got, err, tt.code)
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if files := queueFiles(t, dir); len(files) != 0 {
				t.Errorf("left behind: %q", files)
			}
		})
	}
}
