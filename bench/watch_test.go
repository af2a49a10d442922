package bench

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDirCounter: files linked or renamed into the directory are counted
// from events; a directory made there is not; at the number wanted the
// count is the directory's listing.
func TestDirCounter(t *testing.T) {
	dir := t.TempDir()
	newDir, tmpDir := filepath.Join(dir, "new"), filepath.Join(dir, "tmp")
	for _, d := range []string{newDir, tmpDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(newDir, "before"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewDirCounter(newDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deliver := func(i int, link bool) {
		tmp := filepath.Join(tmpDir, strconv.Itoa(i))
		if err := os.WriteFile(tmp, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(newDir, strconv.Itoa(i))
		if link {
			err = os.Link(tmp, dst)
			os.Remove(tmp)
		} else {
			err = os.Rename(tmp, dst)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	deliver(1, true)
	deliver(2, false)
	if err := os.Mkdir(filepath.Join(newDir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Count(100); err != nil || n != 2 {
		t.Fatalf("Count = %d, %v; want the 2 deliveries since the start", n, err)
	}
	deliver(3, true)
	// Reaching the number wanted, the listing counts: the file from
	// before the start and the directory too.
	if n, err := c.Count(3); err != nil || n != 5 {
		t.Fatalf("Count at the end = %d, %v; want the listing's 5", n, err)
	}
}

func TestCountEventsOverflow(t *testing.T) {
	ev := make([]byte, unix.SizeofInotifyEvent)
	binary.NativeEndian.PutUint32(ev[4:8], unix.IN_Q_OVERFLOW)
	overflow := false
	if n := countEvents(ev, &overflow); n != 0 || !overflow {
		t.Fatalf("countEvents = %d, overflow %v", n, overflow)
	}
	// A truncated event is not read past.
	if n := countEvents(ev[:10], &overflow); n != 0 {
		t.Fatalf("truncated: %d", n)
	}
}
