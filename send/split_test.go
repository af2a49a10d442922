package send

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestTodoSplitOnce: a message whose todo/N is split but not yet removed
// by qmail-clean is not split again by the next scan of todo/ (which
// would rewrite info/N and the channel files under scheduled
// deliveries); once qmail-clean has answered, it is scheduled once.
func TestTodoSplitOnce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newScheduleSender(t, now)
	var clean strings.Builder
	s.cfg.Clean = &clean
	s.events = make(chan event, 64)
	s.set.rw = NewRewriter("example.org", []string{"example.org"}, nil, nil)
	const id = 100
	if err := os.WriteFile(s.path("mess", id), []byte("Subject: x\n\nbody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path("todo", id), []byte("u1\x00p2\x00Fsender@example.net\x00Tuser@example.org\x00Tsomeone@remote.example\x00"), 0o644); err != nil {
		t.Fatal(err)
	}

	s.scanTodo()
	if !s.splitting[id] {
		t.Fatal("todo/100 not being split")
	}
	ev := <-s.events // the split's result; generous: no deadline
	if ev.kind != evSplit {
		t.Fatalf("event %d, want evSplit", ev.kind)
	}
	s.handle(ev)
	if clean.String() != "todo/100\x00" {
		t.Fatalf("qmail-clean got %q", clean.String())
	}
	for _, dir := range []string{"info", "local", "remote"} {
		if _, err := os.Stat(s.path(dir, id)); err != nil {
			t.Errorf("%s/%d: %v", dir, id, err)
		}
	}
	if s.msgs[id] != nil {
		t.Fatal("scheduled before qmail-clean answered")
	}

	// qmail-clean has not answered: todo/100 is still there.
	s.scanTodo()
	select {
	case ev := <-s.events:
		t.Fatalf("split again while its cleanup was pending (event %d)", ev.kind)
	case <-time.After(200 * time.Millisecond):
	}

	s.cleaned(true)
	m := s.msgs[id]
	if m == nil || !m.pending[chanLocal] || !m.pending[chanRemote] {
		t.Fatalf("after the answer: message %+v, want both channels pending", m)
	}
	if len(s.splitting) != 0 || len(s.cleanWaiting) != 0 {
		t.Errorf("splitting %v, %d cleanups waiting", s.splitting, len(s.cleanWaiting))
	}
	if got := strings.Count(s.log.w.(*strings.Builder).String(), "new msg 100\n"); got != 1 {
		t.Errorf("logged new msg %d times:\n%s", got, s.log.w.(*strings.Builder).String())
	}
}
