package send

import (
	"errors"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/goqmail/goqmail/internal/fsutil"
	"github.com/goqmail/goqmail/queue"
	"github.com/goqmail/goqmail/send/spawn"
)

// finalAttempt is appended to a deferral that happens after
// queuelifetime, which turns it into a failure.
const finalAttempt = "I'm not going to try again; this message has been in the queue too long.\n"

// isqrt is the integer square root qmail uses for the retry schedule.
func isqrt(x int64) int64 {
	if x <= 0 {
		return 0
	}
	r := int64(0)
	for bit := int64(1) << 31; bit > 0; bit >>= 1 {
		if t := r + bit; t*t <= x {
			r = t
		}
	}
	return r
}

// nextRetry is qmail's schedule: birth + (isqrt(now-birth) + skip)^2.
func nextRetry(birth, now time.Time, c int) time.Time {
	age := int64(now.Sub(birth) / time.Second)
	n := isqrt(age) + chanSkip[c]
	return birth.Add(time.Duration(n*n) * time.Second)
}

// startDeliveries fills free spawner slots with due recipients.
func (s *Sender) startDeliveries() {
	if s.exitASAP {
		return
	}
	for c := 0; c < numChannels; c++ {
		for s.alive[c] && s.used[c] < len(s.slots[c]) {
			p := s.cur[c]
			if p == nil {
				if s.openPass(c) == nil {
					break
				}
				continue
			}
			rec, ok := s.nextRecord(p)
			if !ok {
				s.cur[c] = nil
				if p.inflight == 0 {
					s.finishPass(p)
				}
				continue
			}
			s.startDelivery(p, rec)
		}
	}
}

// openPass starts a pass over the most overdue channel file of channel c.
// The file is read one record at a time as slots free up, so a message
// with many recipients costs one record of memory.
func (s *Sender) openPass(c int) *pass {
	now := s.now()
	due := s.waiting[c].first()
	if due == nil || due.next[c].After(now) {
		return nil
	}
	p := &pass{msg: due, c: c, retry: nextRetry(due.birth, now, c), dying: now.After(due.birth.Add(s.set.lifetime))}
	if due.direct != nil {
		p.memory = &record{addr: due.direct.addr}
	} else {
		f, err := os.Open(s.path(chanDir[c], due.id))
		if err != nil {
			s.log.line("warning: trouble opening ", s.relPath(chanDir[c], due.id), "; will try again later")
			due.next[c] = now.Add(sleepSysFail)
			s.schedule(due, c)
			return nil
		}
		p.file, p.rr = f, queue.NewRecordReader(f, maxChanRecord)
	}
	s.unschedule(due, c)
	due.pass[c] = p
	s.cur[c] = p
	return p
}

// nextRecord returns the next recipient still to deliver in the pass's
// channel file; ok is false at the end of the file or after a read error
// (which defers the rest of the pass).
func (s *Sender) nextRecord(p *pass) (rec record, ok bool) {
	if p.memory != nil {
		rec, p.memory = *p.memory, nil
		return rec, true
	}
	if p.file == nil {
		return record{}, false
	}
	for {
		r, err := p.rr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.line("warning: trouble reading ", s.relPath(chanDir[p.c], p.msg.id), "; will try again later")
				p.deferred = true
				p.retry = s.now().Add(sleepSysFail)
			}
			p.file.Close()
			p.file = nil
			return record{}, false
		}
		offset := p.offset
		p.offset += int64(len(r.Text)) + 2
		switch r.Type {
		case 'T':
			return record{offset: offset, addr: r.Text}, true
		case 'D':
		default:
			s.log.line("warning: unknown record type in ", s.relPath(chanDir[p.c], p.msg.id), "!")
			p.deferred = true
			p.retry = s.now().Add(sleepSysFail)
			p.file.Close()
			p.file = nil
			return record{}, false
		}
	}
}

func (s *Sender) startDelivery(p *pass, rec record) {
	c := p.c
	slot := 0
	for slot < len(s.slots[c]) && s.slots[c][slot] != nil {
		slot++
	}
	d := &delivery{id: s.nextDelID, p: p, offset: rec.offset, recip: rec.addr}
	s.nextDelID++
	// Logged before the request goes out, as qmail (whose comm_write
	// only buffers it): a delivery that ran always has its line, even
	// when qmail-send dies right after sending it.
	s.log.line("starting delivery ", strconv.FormatUint(d.id, 10), ": msg ", strconv.FormatUint(p.msg.id, 10),
		chanToWord[c], logSafe(rec.addr))
	req := spawn.AppendRequest(nil, byte(slot), s.messID(p.msg.id), verpSender(p.msg.sender, rec.addr), rec.addr)
	s.log.flush()
	if _, err := s.cfg.Spawn[c].Write(req); err != nil {
		s.log.line("alert: oh no! lost spawn connection! dying...")
		s.alive[c] = false
		s.exitASAP = true
		p.deferred = true
		return
	}
	s.slots[c][slot] = d
	s.used[c]++
	p.inflight++
	s.status()
}

// messID is the message name a spawner opens, relative to queue/mess.
func (s *Sender) messID(id uint64) string {
	return strconv.FormatUint(id%queue.Split, 10) + "/" + strconv.FormatUint(id, 10)
}

// finishDelivery handles one spawner report. The slot is free at once:
// the spawner is done with it, and the next delivery need not wait for
// qmail-clean to settle a direct message (settleDirect).
func (s *Sender) finishDelivery(c int, slot byte, report string) {
	if int(slot) >= len(s.slots[c]) || s.slots[c][slot] == nil {
		s.log.line("warning: internal error: delivery report out of range")
		return
	}
	d := s.slots[c][slot]
	s.slots[c][slot] = nil
	s.used[c]--
	s.reportDelivery(c, d, report)
}

// reportDelivery acts on the report of delivery d, whose slot is free:
// the log line, the mark in the queue files, the end of its pass.
func (s *Sender) reportDelivery(c int, d *delivery, report string) {
	p := d.p
	did := strconv.FormatUint(d.id, 10)
	// A report with no letter is mangled, as in qmail (an empty report
	// from a spawner must not crash qmail-send).
	var letter byte
	if report != "" {
		letter = report[0]
	}
	if letter == 'Z' && p.dying {
		report = "D" + report[1:] + finalAttempt
		letter = 'D'
	}
	if p.msg.direct != nil && !d.settled {
		if s.settleDirect(c, d, letter, report) {
			return // the report is handled once qmail-clean has answered
		}
		// The outcome cannot be recorded: the recipient is tried
		// again, as after a crash.
		p.retry = s.now().Add(sleepSysFail)
		if letter == 'D' {
			report, letter = "Z"+report[1:], 'Z'
		}
	}
	switch letter {
	case 'K':
		s.log.line("delivery ", did, ": success: ", logSafe(report[1:]))
		if p.msg.direct == nil {
			s.markDone(c, p.msg.id, d.offset)
		}
	case 'Z':
		s.log.line("delivery ", did, ": deferral: ", logSafe(report[1:]))
		p.deferred = true
	case 'D':
		s.log.line("delivery ", did, ": failure: ", logSafe(report[1:]))
		s.addBounce(p.msg.id, d.recip, report[1:])
		s.markDone(c, p.msg.id, d.offset)
	default:
		s.log.line("delivery ", did, ": report mangled, will defer")
		p.deferred = true
	}
	p.inflight--
	s.status()
	if p.inflight == 0 && p.file == nil {
		if s.cur[c] == p {
			s.cur[c] = nil
		}
		s.finishPass(p)
	}
}

// finishPass ends a pass: a channel file with every recipient done is
// removed; otherwise the channel waits for its next retry time.
func (s *Sender) finishPass(p *pass) {
	m, c := p.msg, p.c
	if m.pass[c] != p {
		return
	}
	m.pass[c] = nil
	if p.deferred {
		m.next[c] = p.retry
		s.schedule(m, c)
		return
	}
	if m.direct != nil {
		m.pending[c] = false
		s.completeDirect(m)
		return
	}
	if err := fsutil.Unlink(s.path(chanDir[c], m.id)); err != nil {
		s.log.line("warning: unable to unlink ", s.relPath(chanDir[c], m.id), "; will try again later")
		m.next[c] = s.now().Add(sleepSysFail)
		s.schedule(m, c)
		return
	}
	m.pending[c] = false
	if !m.pending[chanLocal] && !m.pending[chanRemote] {
		s.completeMessage(m)
	}
}

// markDone overwrites the 'T' of a finished recipient with 'D'.
func (s *Sender) markDone(c int, id uint64, offset int64) {
	f, err := os.OpenFile(s.path(chanDir[c], id), os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt([]byte{'D'}, offset)
		f.Close()
	}
	if err != nil {
		s.log.line("warning: trouble marking ", s.relPath(chanDir[c], id), "; message will be delivered twice!")
	}
}

// addBounce appends the failed recipient's paragraph to bounce/N.
func (s *Sender) addBounce(id uint64, recip, report string) {
	text := []byte(BounceParagraph(s.set.rw.stripVirtualPrepend(recip), report))
	for {
		f, err := os.OpenFile(s.path("bounce", id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			_, err = f.Write(text)
			f.Close()
			if err == nil {
				return
			}
		}
		s.log.line("alert: unable to append to bounce message; HELP! sleeping...")
		s.log.flush()
		time.Sleep(10 * time.Second)
	}
}
