package admin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

// enqueue queues a message with the real qmail-queue and returns its id.
func enqueue(t *testing.T, home, sender string, rcpts ...string) uint64 {
	t.Helper()
	before := todoIDs(t, home)
	// qmail-queue itself: message on fd 0, envelope on fd 1.
	envPath := filepath.Join(t.TempDir(), "envelope")
	if err := os.WriteFile(envPath, []byte(queue.EncodeEnvelope(sender, rcpts)), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := os.Open(envPath)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-queue"))
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader("Subject: test\n\nbody\n"), env, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("qmail-queue: %v %s", err, stderr.String())
	}
	for id := range todoIDs(t, home) {
		if !before[id] {
			return id
		}
	}
	t.Fatal("qmail-queue left nothing in todo/")
	return 0
}

func todoIDs(t *testing.T, home string) map[uint64]bool {
	des, err := os.ReadDir(filepath.Join(home, "queue", "todo"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint64]bool{}
	for _, de := range des {
		id, _ := strconv.ParseUint(de.Name(), 10, 64)
		ids[id] = true
	}
	return ids
}

// preprocess does what qmail-send does with todo/N: info/N (sender,
// mtime = birth), local/N and remote/N, then todo/N and intd/N go.
func preprocess(t *testing.T, home string, id uint64, birth time.Time, info string, local, remote []byte, bounce bool) {
	t.Helper()
	q := filepath.Join(home, "queue")
	write := func(p string, b []byte) {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(queue.SplitPath(q, "info", id), []byte(info))
	if err := os.Chtimes(queue.SplitPath(q, "info", id), birth, birth); err != nil {
		t.Fatal(err)
	}
	if local != nil {
		write(queue.SplitPath(q, "local", id), local)
	}
	if remote != nil {
		write(queue.SplitPath(q, "remote", id), remote)
	}
	if bounce {
		write(queue.FlatPath(q, "bounce", id), []byte("<x@y>:\nfailed\n\n"))
	}
	os.Remove(queue.FlatPath(q, "todo", id))
	os.Remove(queue.FlatPath(q, "intd", id))
}

func messSize(t *testing.T, home string, id uint64) int64 {
	fi, err := os.Stat(queue.SplitPath(filepath.Join(home, "queue"), "mess", id))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestQreadAndQstat(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	q := filepath.Join(home, "queue")

	id1 := enqueue(t, home, "alice@example.org", "bob@testhost.example", "carol@elsewhere.example")
	id2 := enqueue(t, home, "", "dave@testhost.example")
	id3 := enqueue(t, home, "x@y", "z@w")
	s, err := StatQueue(q)
	if err != nil {
		t.Fatal(err)
	}
	if s != (QueueStat{Messages: 3, Unpreprocessed: 3}) {
		t.Errorf("before preprocessing: %+v", s)
	}

	birth1 := time.Date(2024, time.January, 5, 9, 7, 3, 0, time.UTC)
	preprocess(t, home, id1, birth1, "Falice@example.org\x00",
		[]byte("Tbob@testhost.example\x00"), []byte("Dcarol@elsewhere.example\x00Tcarol2@elsewhere.example\x00"), false)
	birth2 := time.Date(2023, time.December, 25, 23, 59, 59, 0, time.UTC)
	// A bounce in progress; an unprintable byte in a recipient; a record
	// without its NUL (a write in progress) is not shown.
	preprocess(t, home, id2, birth2, "F\x00", []byte("Ddave@testhost.example\x00Tev\x01il@testhost.example\x00Tpartial"), nil, true)

	s, err = StatQueue(q)
	if err != nil {
		t.Fatal(err)
	}
	if s != (QueueStat{Messages: 3, Unpreprocessed: 1}) {
		t.Errorf("after preprocessing two: %+v", s)
	}
	var b bytes.Buffer
	WriteQstat(&b, s)
	if b.String() != "messages in queue: 3\nmessages in queue but not yet preprocessed: 1\n" {
		t.Errorf("qstat output %q", b.String())
	}

	entries, err := ReadQueue(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("ReadQueue: %d entries, want 2 (todo/%d is not preprocessed): %+v", len(entries), id3, entries)
	}
	want := map[uint64]string{
		id1: fmt.Sprintf("5 Jan 2024 09:07:03 GMT  #%d  %d  <alice@example.org> \n\tlocal\tbob@testhost.example\n  done\tremote\tcarol@elsewhere.example\n\tremote\tcarol2@elsewhere.example\n", id1, messSize(t, home, id1)),
		id2: fmt.Sprintf("25 Dec 2023 23:59:59 GMT  #%d  %d  <>  bouncing\n  done\tlocal\tdave@testhost.example\n\tlocal\tev_il@testhost.example\n", id2, messSize(t, home, id2)),
	}
	var all strings.Builder
	for _, e := range entries {
		var b bytes.Buffer
		if err := WriteQread(&b, []QueueEntry{e}); err != nil {
			t.Fatal(err)
		}
		if b.String() != want[e.ID] {
			t.Errorf("qread of #%d:\n%q\nwant\n%q", e.ID, b.String(), want[e.ID])
		}
		all.WriteString(b.String())
	}

	// The programs print the same.
	for prog, wantOut := range map[string]string{
		"qmail-qread": all.String(),
		"qmail-qstat": "messages in queue: 3\nmessages in queue but not yet preprocessed: 1\n",
	} {
		cmd := exec.Command(testenv.Program(t, prog))
		cmd.Env = append(os.Environ(), "QMAILHOME="+home)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		if string(out) != wantOut {
			t.Errorf("%s printed\n%q\nwant\n%q", prog, out, wantOut)
		}
	}
}

func TestQreadTrouble(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	q := filepath.Join(home, "queue")
	id := enqueue(t, home, "a@b", "c@d")
	preprocess(t, home, id, time.Unix(0, 0), "Fa@b\x00", []byte("Tc@d\x00"), nil, false)
	os.Remove(queue.SplitPath(q, "mess", id))
	entries, err := ReadQueue(q)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	WriteQread(&b, entries)
	if want := fmt.Sprintf("warning: trouble with #%d: no such file or directory\n", id); b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}

	// An info subdirectory that cannot be read is fatal.
	os.RemoveAll(filepath.Join(q, "info", "7"))
	if _, err := ReadQueue(q); err == nil || !strings.Contains(err.Error(), "info/7") {
		t.Errorf("ReadQueue without info/7: %v", err)
	}
	cmd := exec.Command(testenv.Program(t, "qmail-qread"))
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 111 || !strings.HasSuffix(string(out), "fatal: unable to opendir info/7: no such file or directory\n") {
		t.Errorf("qmail-qread without info/7: %v %q", err, out)
	}
}

func FuzzReadQueueFiles(f *testing.F) {
	f.Add([]byte("Fa@b\x00"), []byte("Tc@d\x00Dx@y\x00"))
	f.Add([]byte(""), []byte("T"))
	f.Add([]byte("\x00\x00"), []byte("\x00\x00\x00Tq"))
	f.Fuzz(func(t *testing.T, info, local []byte) {
		q := filepath.Join(t.TempDir(), "queue")
		if err := queue.Create(q, nil); err != nil {
			t.Fatal(err)
		}
		const id = 46
		os.WriteFile(queue.SplitPath(q, "mess", id), []byte("x"), 0o644)
		os.WriteFile(queue.SplitPath(q, "info", id), info, 0o600)
		os.WriteFile(queue.SplitPath(q, "local", id), local, 0o600)
		entries, err := ReadQueue(q)
		if err != nil || len(entries) != 1 {
			t.Fatalf("%v %v", entries, err)
		}
		var b bytes.Buffer
		WriteQread(&b, entries)
		for _, c := range b.Bytes() {
			if c != '\n' && c != '\t' && (c < 32 || c > 126) {
				t.Fatalf("unprintable %q in output %q", c, b.String())
			}
		}
		if n := bytes.Count(local, []byte{0}); len(entries[0].Recipients) > n {
			t.Fatalf("%d recipients from %d records", len(entries[0].Recipients), n)
		}
	})
}
