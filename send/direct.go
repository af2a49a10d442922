package send

import (
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/fsutil"
	"github.com/goqmail/goqmail/queue"
)

// Direct delivery (docs/qmail-send.md, "Direct delivery").
//
// qmail preprocesses every message of todo/ before its first delivery:
// it writes info/N and the channel files, fsyncs them and only then
// removes todo/N. For a message with one recipient that is delivered at
// the first attempt, those two files are created, fsynced, marked and
// removed for nothing: qmail-send's costliest work per message.
//
// A message of todo/ with exactly one recipient is therefore delivered
// straight from todo/N, its recipient kept in memory, while there are
// free delivery slots for its channel. The queue's states stay qmail's:
//   - on success, qmail-clean removes todo/N (with intd/N), the record of
//     the recipient, before the success is logged, and then mess/N: the
//     message ends as any other.
//   - on a deferral or a failure, qmail-send first writes info/N and the
//     channel file as preprocessing would have and fsyncs them, has
//     qmail-clean remove todo/N, and then records the outcome on those
//     files (bounce/N, the 'D' mark, the retry time) as usual.
//
// A crash while a direct delivery runs, or before qmail-clean has
// answered for it, leaves todo/N, so the message is preprocessed again
// and its recipient delivered again: the same duplicate that qmail gives
// when it crashes between a delivery and marking it done in the channel
// file, and never a loss; a delivery whose outcome was logged is not
// repeated. With one
// recipient the two windows are the same; a message with more
// recipients is always preprocessed, so a crash never repeats
// deliveries that qmail would have marked.

// directRecipient is the one recipient of a direct message.
type directRecipient struct {
	c    int // its channel, after rewriting
	addr string
}

// directTodo is what a todo/N file holds when its message can be
// delivered directly.
type directTodo struct {
	uid, pid int
	sender   string
	recip    directRecipient
}

// readDirect reads todo/N and reports whether it is a direct message:
// one sender, exactly one recipient, nothing unusual. Anything else (two
// recipients, an unknown record, a read error) is left to the ordinary
// preprocessing, which reports it as qmail does.
func readDirect(todo io.Reader, rw *Rewriter) (d directTodo, ok bool) {
	var sender, recip bool
	rr := queue.NewRecordReader(todo, maxRecord)
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return d, sender && recip
		}
		if err != nil {
			return d, false
		}
		switch rec.Type {
		case 'u':
			d.uid, _ = control.ScanUlong(rec.Text)
		case 'p':
			d.pid, _ = control.ScanUlong(rec.Text)
		case 'F':
			if sender {
				return d, false
			}
			sender, d.sender = true, rec.Text
		case 'T':
			if recip {
				return d, false
			}
			addr, local := rw.Rewrite(rec.Text)
			d.recip = directRecipient{c: chanRemote, addr: addr}
			if local {
				d.recip.c = chanLocal
			}
			recip = true
		default:
			return d, false
		}
	}
}

// directPerSlot bounds the direct messages of a channel, waiting or
// under way, per delivery slot. When deliveries fall behind, messages
// wait in memory rather than being preprocessed (which would make each
// one dearer just when the machine is busiest), up to this many: todo/,
// which qmail-send lists at most once per todoScanGap, stays a few
// thousand entries at most.
const directPerSlot = 50

// directAllowed says, per channel, whether a message split now may be
// delivered directly.
func (s *Sender) directAllowed() [numChannels]bool {
	var allow [numChannels]bool
	for c := range allow {
		allow[c] = s.directCount[c] < directPerSlot*len(s.slots[c])
	}
	return allow
}

// commitDirect schedules a direct message at once: todo/N stays.
func (s *Sender) commitDirect(r *splitResult) {
	now := s.now()
	c := r.direct.c
	m := &message{id: r.id, birth: now, sender: r.sender, direct: r.direct}
	m.pending[c] = true
	m.next[c] = now
	s.msgs[r.id] = m
	s.directCount[c]++
	s.schedule(m, c)
}

// materialize gives a direct message the files preprocessing would have
// written, info/N and its channel file with the one recipient at offset
// 0, fsynced: with todo/N gone (settleDirect), the message is an
// ordinary one. It is false, with a warning logged, when the files
// cannot be made durable; the message then stays direct.
func (s *Sender) materialize(m *message) bool {
	c := m.direct.c
	paths := []string{s.path("info", m.id), s.path(chanDir[c], m.id)}
	records := [][]byte{queue.AppendRecord(nil, 'F', m.sender), queue.AppendRecord(nil, 'T', m.direct.addr)}
	var files []*os.File
	fail := func(parts ...string) bool {
		for _, f := range files {
			f.Close()
		}
		for _, p := range paths {
			os.Remove(p)
		}
		s.log.line(parts...)
		return false
	}
	for i, p := range paths {
		rel := s.relPath([]string{"info", chanDir[c]}[i], m.id)
		if err := fsutil.Unlink(p); err != nil {
			return fail("warning: unable to unlink ", rel)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fail("warning: unable to create ", rel)
		}
		files = append(files, f)
		if _, err := f.Write(records[i]); err != nil {
			return fail("warning: trouble writing to ", rel)
		}
	}
	for i, err := range syncAll(files) {
		if err != nil {
			return fail("warning: trouble fsyncing ", s.relPath([]string{"info", chanDir[c]}[i], m.id))
		}
	}
	st, err := files[0].Stat()
	if err != nil {
		return fail("warning: unable to stat ", s.relPath("info", m.id))
	}
	for _, f := range files {
		f.Close()
	}
	m.birth = st.ModTime()
	m.direct = nil
	s.directCount[c]--
	return true
}

// settleDirect makes a direct message's queue files say what the report
// of its delivery will record before the report is acted on, as qmail
// marks a delivery in the channel file before it goes on: on success
// todo/N, its record, goes; otherwise info/N and the channel file are
// written and fsynced, then todo/N goes. Until qmail-clean has answered
// nothing is logged (the slot is already free for the next delivery): a
// crash meanwhile repeats the delivery, which the log shows as running,
// and never repeats one whose outcome was logged; a stop waits for
// qmail-clean's answer. It is false when the files cannot be written:
// the report is then handled at once, as a deferral.
func (s *Sender) settleDirect(c int, d *delivery, letter byte, report string) bool {
	m := d.p.msg
	if letter != 'K' && !s.materialize(m) {
		return false
	}
	d.settled = true
	s.removeTodo(m.id, func(ok bool) {
		if !ok && letter == 'K' {
			// todo/N stays: the message is preprocessed and
			// delivered again, and mess/N must stay for it.
			s.log.line("warning: trouble marking ", s.relPath("todo", m.id), "; message will be delivered twice!")
			m.keepMess = true
		}
		s.reportDelivery(c, d, report)
	})
	return true
}

// completeDirect ends a direct message whose recipient is delivered and
// whose todo/N is gone (settleDirect): "end msg", then mess/N.
func (s *Sender) completeDirect(m *message) {
	idStr := strconv.FormatUint(m.id, 10)
	s.log.line("end msg ", idStr)
	delete(s.msgs, m.id)
	s.directCount[m.direct.c]--
	if m.keepMess {
		return
	}
	s.cleanup("foop/"+idStr, func(ok bool) {
		if !ok {
			s.log.line("warning: qmail-clean unable to clean up foop/", idStr)
		}
	})
}

// removeTodo has qmail-clean remove todo/N (and intd/N) of a message
// whose queue files say all there is to say about it. Until qmail-clean
// answers, scans of todo/ leave the message alone. If todo/N stays, the
// message is preprocessed again, as in qmail.
func (s *Sender) removeTodo(id uint64, done func(ok bool)) {
	s.splitting[id] = true
	s.cleanup("todo/"+strconv.FormatUint(id, 10), func(ok bool) {
		s.doneWithTodo(id)
		if !ok {
			s.log.line("warning: qmail-clean unable to clean up ", s.relPath("todo", id))
		}
		done(ok)
	})
}
