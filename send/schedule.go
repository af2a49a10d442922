package send

import "container/heap"

// dueQueue holds the messages of one channel that wait for a pass (the
// channel file exists and no pass over it runs), ordered by their next
// attempt and then by id. It is qmail-send's prioq: picking the most
// overdue message and the time of the next wakeup cost O(log n) and O(1)
// instead of a walk over every queued message per delivery event, which
// made each event cost O(queue size).
type dueQueue struct {
	c    int
	msgs []*message
}

func (q *dueQueue) Len() int { return len(q.msgs) }

func (q *dueQueue) Less(i, j int) bool {
	a, b := q.msgs[i], q.msgs[j]
	if !a.next[q.c].Equal(b.next[q.c]) {
		return a.next[q.c].Before(b.next[q.c])
	}
	return a.id < b.id
}

func (q *dueQueue) Swap(i, j int) {
	q.msgs[i], q.msgs[j] = q.msgs[j], q.msgs[i]
	q.msgs[i].due[q.c] = i + 1
	q.msgs[j].due[q.c] = j + 1
}

func (q *dueQueue) Push(x any) {
	m := x.(*message)
	q.msgs = append(q.msgs, m)
	m.due[q.c] = len(q.msgs)
}

func (q *dueQueue) Pop() any {
	last := len(q.msgs) - 1
	m := q.msgs[last]
	q.msgs[last] = nil
	q.msgs = q.msgs[:last]
	m.due[q.c] = 0
	return m
}

// first is the waiting message with the earliest next attempt, or nil.
func (q *dueQueue) first() *message {
	if len(q.msgs) == 0 {
		return nil
	}
	return q.msgs[0]
}

// schedule records that m waits on channel c until m.next[c]: it is
// called whenever a channel becomes pending without a pass, or the next
// attempt of such a channel changes.
func (s *Sender) schedule(m *message, c int) {
	q := &s.waiting[c]
	q.c = c
	if i := m.due[c]; i > 0 {
		heap.Fix(q, i-1)
		return
	}
	heap.Push(q, m)
}

// unschedule takes m off channel c's queue (a pass over it starts).
func (s *Sender) unschedule(m *message, c int) {
	if i := m.due[c]; i > 0 {
		heap.Remove(&s.waiting[c], i-1)
	}
}

// rescheduleAll restores the order after every next attempt changed at
// once (SIGALRM).
func (s *Sender) rescheduleAll() {
	for c := range s.waiting {
		s.waiting[c].c = c
		heap.Init(&s.waiting[c])
	}
}
