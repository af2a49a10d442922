package queue

import (
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pulls counts the bytes written to the queue's lock/trigger since the
// last call. The FIFO is a bare non-blocking descriptor: an os.File
// would wait in the runtime's poller instead of saying there is none.
type pulls struct{ fd int }

func openPulls(t *testing.T, dir string) *pulls {
	t.Helper()
	fd, err := unix.Open(filepath.Join(dir, "lock", "trigger"), unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &pulls{fd: fd}
}

func (p *pulls) count() int {
	buf := make([]byte, 64)
	n, _ := unix.Read(p.fd, buf) // EAGAIN: none
	return max(n, 0)
}

// TestTriggerPuller: the writer's first commit after a quiet gap wakes
// qmail-send at once; the commits of a burst share one pull at the end of
// the gap, which always comes after the last of them; a writer that ends
// pulls what it had scheduled.
func TestTriggerPuller(t *testing.T) {
	dir := newQueue(t)
	p := openPulls(t, dir)
	const gap = 200 * time.Millisecond
	trig := &triggerPuller{dir: dir, gap: gap}

	trig.pull()
	if n := p.count(); n != 1 {
		t.Fatalf("first commit: %d pulls, want 1 at once", n)
	}
	start := time.Now()
	for range 5 {
		trig.pull()
	}
	if n := p.count(); n != 0 {
		t.Fatalf("burst within the gap: %d pulls at once, want 0", n)
	}
	deadline := time.Now().Add(5 * gap)
	for p.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the burst's pull never came")
		}
		time.Sleep(gap / 20)
	}
	if waited := time.Since(start); waited < gap/2 {
		t.Errorf("the burst's pull came after %v, not at the end of the gap", waited)
	}
	time.Sleep(2 * gap)
	if n := p.count(); n != 0 {
		t.Errorf("%d more pulls after the burst's, want 0", n)
	}

	// Quiet for longer than the gap: at once again.
	trig.pull()
	if n := p.count(); n != 1 {
		t.Fatalf("commit after a quiet gap: %d pulls, want 1 at once", n)
	}
	// A scheduled pull is made at once by flush, and only once.
	trig.pull()
	trig.flush()
	if n := p.count(); n != 1 {
		t.Fatalf("flush: %d pulls, want 1", n)
	}
	time.Sleep(2 * gap)
	if n := p.count(); n != 0 {
		t.Errorf("%d pulls after the flush, want 0", n)
	}
}
