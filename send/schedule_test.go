package send

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/queue"
)

// newScheduleSender is a Sender over an empty queue in a temporary home
// with a fixed clock.
func newScheduleSender(t testing.TB, now time.Time) *Sender {
	qdir := filepath.Join(t.TempDir(), "queue")
	if err := queue.Create(qdir, nil); err != nil {
		t.Fatal(err)
	}
	return &Sender{
		// Requests to qmail-clean go nowhere; a test answers them
		// with s.cleaned.
		cfg:        Config{Clean: io.Discard},
		cleanAlive: true,
		splitting:  map[uint64]bool{},
		complete:   map[uint64]time.Time{},
		qdir:       qdir,
		log:        &logger{w: &strings.Builder{}},
		now:        func() time.Time { return now },
		msgs:       map[uint64]*message{},
		set:        &settings{lifetime: 7 * 24 * time.Hour},
	}
}

// addWaiting queues message id with a channel c file due at next.
func addWaiting(t testing.TB, s *Sender, id uint64, c int, next time.Time) *message {
	if err := os.WriteFile(s.path(chanDir[c], id), []byte("Tu@example.org\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := s.msgs[id]
	if m == nil {
		m = &message{id: id}
		s.msgs[id] = m
	}
	m.pending[c] = true
	m.next[c] = next
	s.schedule(m, c)
	return m
}

// TestOpenPassOrder: passes open most overdue first, ties by the smaller
// id, never before the next attempt, and each channel keeps its own
// order.
func TestOpenPassOrder(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name   string
		local  map[uint64]time.Duration // id: next attempt relative to now
		remote map[uint64]time.Duration
		c      int
		opens  []uint64 // ids in the order their passes open, then nil
	}{
		{
			name:  "most overdue first",
			local: map[uint64]time.Duration{10: -time.Second, 11: -time.Hour, 12: -time.Minute},
			c:     chanLocal,
			opens: []uint64{11, 12, 10},
		},
		{
			name:  "ties by id",
			local: map[uint64]time.Duration{30: 0, 7: 0, 19: 0},
			c:     chanLocal,
			opens: []uint64{7, 19, 30},
		},
		{
			name:  "not yet due stays",
			local: map[uint64]time.Duration{1: time.Minute, 2: -time.Minute, 3: time.Second},
			c:     chanLocal,
			opens: []uint64{2},
		},
		{
			name:   "channels are separate",
			local:  map[uint64]time.Duration{5: -time.Hour},
			remote: map[uint64]time.Duration{6: -time.Minute, 5: time.Hour},
			c:      chanRemote,
			opens:  []uint64{6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScheduleSender(t, now)
			for id, d := range tt.local {
				addWaiting(t, s, id, chanLocal, now.Add(d))
			}
			for id, d := range tt.remote {
				addWaiting(t, s, id, chanRemote, now.Add(d))
			}
			var got []uint64
			for {
				p := s.openPass(tt.c)
				if p == nil {
					break
				}
				p.file.Close()
				if s.msgs[p.msg.id].pass[tt.c] != p || p.msg.due[tt.c] != 0 {
					t.Fatalf("pass over %d not recorded or still waiting", p.msg.id)
				}
				got = append(got, p.msg.id)
				if len(got) > len(tt.opens) {
					break
				}
			}
			if fmtIDs(got) != fmtIDs(tt.opens) {
				t.Fatalf("passes opened for %v, want %v", got, tt.opens)
			}
		})
	}
}

func fmtIDs(ids []uint64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatUint(id, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestScheduleFollowsPasses: a deferred pass puts the message back at its
// retry time, which is what wakeup then sleeps for; a finished pass
// removes the channel; SIGALRM's "everything due now" reorders by id.
func TestScheduleFollowsPasses(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newScheduleSender(t, now)
	s.nextTodo = now.Add(time.Hour)
	s.nextCleanup = now.Add(time.Hour)
	a := addWaiting(t, s, 40, chanLocal, now.Add(-time.Minute))
	b := addWaiting(t, s, 41, chanLocal, now.Add(-time.Second))

	p := s.openPass(chanLocal)
	if p == nil || p.msg != a {
		t.Fatalf("first pass not over message 40: %+v", p)
	}
	p.file.Close()
	p.deferred, p.retry = true, now.Add(10*time.Minute)
	s.finishPass(p)
	if a.due[chanLocal] == 0 || !a.next[chanLocal].Equal(now.Add(10*time.Minute)) {
		t.Fatalf("deferred message 40 not waiting for its retry: due=%d next=%v", a.due[chanLocal], a.next[chanLocal])
	}

	q := s.openPass(chanLocal)
	if q == nil || q.msg != b {
		t.Fatalf("second pass not over message 41: %+v", q)
	}
	q.file.Close()
	if s.openPass(chanLocal) != nil {
		t.Fatalf("a pass opened before message 40's retry time")
	}
	if got, want := s.wakeup(), 10*time.Minute+time.Second; got != want {
		t.Fatalf("wakeup = %v, want %v (the retry of message 40)", got, want)
	}
	s.finishPass(q)
	if b.pending[chanLocal] || b.due[chanLocal] != 0 {
		t.Fatalf("finished message 41 still pending or waiting")
	}
	if _, err := os.Stat(s.path("local", 41)); !os.IsNotExist(err) {
		t.Fatalf("local/41 not removed: %v", err)
	}

	c := addWaiting(t, s, 39, chanLocal, now.Add(time.Hour))
	for _, m := range s.msgs {
		m.next[chanLocal] = now
	}
	s.rescheduleAll()
	if first := s.waiting[chanLocal].first(); first != c {
		t.Fatalf("after SIGALRM the first due is %v, want message 39", first)
	}
}

// BenchmarkOpenPass is one delivery event (open the most overdue pass,
// then put the message back deferred) with a queue of n waiting
// messages: the cost must not grow with n.
func BenchmarkOpenPass(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			now := time.Unix(1_800_000_000, 0)
			s := newScheduleSender(b, now)
			for id := 1; id <= n; id++ {
				addWaiting(b, s, uint64(id), chanLocal, now.Add(-time.Duration(id)*time.Second))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := s.openPass(chanLocal)
				p.file.Close()
				p.deferred, p.retry = true, now.Add(-time.Duration(i%n)*time.Second)
				s.finishPass(p)
			}
		})
	}
}

// TestPreprocessUnschedules: a message queued again under the same id
// (todo/N while the old one still waits) leaves the schedule with the old
// entry, so that no pass opens over the replaced message.
func TestPreprocessUnschedules(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newScheduleSender(t, now)
	s.nextTodo = now.Add(time.Hour)
	addWaiting(t, s, 50, chanLocal, now.Add(-time.Minute))
	addWaiting(t, s, 50, chanRemote, now.Add(-time.Minute))
	// No todo/50: the old message is dropped, nothing queued.
	if !s.forgetForTodo(50) {
		t.Fatal("message 50 kept")
	}
	r := &splitResult{id: 50}
	s.splitTodo(r, s.set.rw, s.directAllowed())
	s.commitTodo(r, func() {})
	for c := 0; c < numChannels; c++ {
		if n := s.waiting[c].Len(); n != 0 {
			t.Errorf("channel %d: %d messages still waiting", c, n)
		}
		if p := s.openPass(c); p != nil {
			t.Errorf("channel %d: pass opened over dropped message %d", c, p.msg.id)
		}
	}
}

// TestTriggerScansSpaced: a trigger asks for a scan of todo/ no sooner
// than todoScanGap after the last one, and the main loop's sleep ends
// then, without qmail's second of fuzz; once exiting, no scan is due.
func TestTriggerScansSpaced(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := newScheduleSender(t, now)
	s.nextCleanup = now.Add(time.Hour)
	s.scanTodo()
	if got, want := s.wakeup(), sleepTodo; got != want {
		t.Fatalf("after a scan: wakeup %v, want %v", got, want)
	}
	s.handle(event{kind: evTrigger})
	s.handle(event{kind: evTrigger})
	if got, want := s.wakeup(), todoScanGap; got != want {
		t.Fatalf("after triggers: wakeup %v, want %v", got, want)
	}
	s.exitASAP = true
	if got, want := s.wakeup(), time.Hour+time.Second; got != want {
		t.Fatalf("exiting: wakeup %v, want %v", got, want)
	}
}
