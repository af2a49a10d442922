package logbuf

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder keeps each Write it is given.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

func TestLinesWaitForTheDelay(t *testing.T) {
	var out recorder
	const delay = 100 * time.Millisecond
	b := New(&out, delay)
	start := time.Now()
	b.Write([]byte("one\n"))
	b.Write([]byte("two\n"))
	if w := out.get(); len(w) != 0 {
		t.Fatalf("written at once: %q", w)
	}
	for len(out.get()) == 0 {
		if time.Since(start) > 20*delay {
			t.Fatal("never written")
		}
		time.Sleep(delay / 10)
	}
	if waited := time.Since(start); waited < delay/2 {
		t.Errorf("written after %v, before the delay", waited)
	}
	if w, want := out.get(), []string{"one\ntwo\n"}; !slices.Equal(w, want) {
		t.Errorf("writes %q, want %q", w, want)
	}
	// The next line waits again, and Flush writes it at once.
	b.Write([]byte("three\n"))
	b.Flush()
	if w, want := out.get(), []string{"one\ntwo\n", "three\n"}; !slices.Equal(w, want) {
		t.Errorf("after Flush: %q, want %q", w, want)
	}
	time.Sleep(2 * delay)
	if w := out.get(); len(w) != 2 {
		t.Errorf("more writes after the flush: %q", w)
	}
}

func TestBurstWrittenAtTheBound(t *testing.T) {
	var out recorder
	b := New(&out, time.Hour)
	line := strings.Repeat("x", 99) + "\n"
	for range maxPending / len(line) {
		b.Write([]byte(line))
	}
	if w := out.get(); len(w) != 0 {
		t.Fatalf("written below the bound: %d writes", len(w))
	}
	b.Write([]byte(line))
	if w := out.get(); len(w) != 1 || len(w[0]) < maxPending {
		t.Fatalf("at the bound: %d writes, want one of all the lines", len(w))
	}
}

// TestConcurrentLinesStayWhole: lines from many sessions at once all
// arrive, each whole.
func TestConcurrentLinesStayWhole(t *testing.T) {
	var out recorder
	b := New(&out, time.Millisecond)
	var wg sync.WaitGroup
	for s := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				fmt.Fprintf(b, "session %d line %d\n", s, i)
				if i%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	b.Flush()
	all := strings.Join(out.get(), "")
	lines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	if len(lines) != 20*200 {
		t.Fatalf("%d lines, want %d", len(lines), 20*200)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var s, i int
		if n, err := fmt.Sscanf(l, "session %d line %d", &s, &i); n != 2 || err != nil {
			t.Fatalf("line %q cut or mixed", l)
		}
		seen[l] = true
	}
	if len(seen) != 20*200 {
		t.Errorf("%d distinct lines, want %d", len(seen), 20*200)
	}
	if w := len(out.get()); w >= 20*200 {
		t.Errorf("%d writes for %d lines: nothing merged", w, 20*200)
	}
}
