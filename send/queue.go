package send

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/queue"
)

// maxRecord bounds one record of a queue file: addresses are shorter than
// queue.MaxAddr, uid and pid are short numbers.
const maxRecord = queue.MaxAddr + 16

// maxChanRecord bounds one record of a local/ or remote/ file. Its
// recipient is rewritten and can be longer than any queue address: a
// virtualdomains prepend and "-" in front, "@" and envnoathost added, each
// of the two a control line. A smaller bound would make such a
// recipient unreadable, and its message would sit in the queue for ever.
const maxChanRecord = maxRecord + 2 + 2*control.MaxLine

// preprocess moves todo/N into info/N, local/N and remote/N (§3.4).
func (s *Sender) preprocess(id uint64) {
	if m := s.msgs[id]; m != nil {
		if m.pass[chanLocal] != nil || m.pass[chanRemote] != nil {
			return // qmail-clean failed earlier; wait for the passes
		}
		for c := 0; c < numChannels; c++ {
			s.unschedule(m, c)
		}
		delete(s.msgs, id)
	}
	delete(s.complete, id)
	fail := func() {
		if t := s.now().Add(sleepSysFail); t.Before(s.nextTodo) {
			s.nextTodo = t
		}
	}
	todoName := s.relPath("todo", id)
	todo, err := os.Open(s.path("todo", id))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.line("warning: unable to open ", todoName)
			fail()
		}
		return
	}
	defer todo.Close()
	mst, err := os.Stat(s.path("mess", id))
	if err != nil {
		s.log.line("warning: unable to stat ", s.relPath("mess", id))
		fail()
		return
	}
	for _, dir := range []string{"info", "local", "remote"} {
		if err := os.Remove(s.path(dir, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.line("warning: unable to unlink ", s.relPath(dir, id))
			fail()
			return
		}
	}
	info, err := os.OpenFile(s.path("info", id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		s.log.line("warning: unable to create ", s.relPath("info", id))
		fail()
		return
	}
	defer info.Close()
	s.log.line("new msg ", strconv.FormatUint(id, 10))

	var chanFiles [numChannels]*os.File
	var chanBufs [numChannels]*bufio.Writer
	defer func() {
		for _, f := range chanFiles {
			if f != nil {
				f.Close()
			}
		}
	}()
	// uid and pid are logged as numbers, 0 when absent, as qmail's
	// scan_ulong reads them: the text of the record never reaches the
	// log.
	var uid, pid int
	var sender string
	rr := queue.NewRecordReader(todo, maxRecord)
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.log.line("warning: trouble reading ", todoName)
			fail()
			return
		}
		switch rec.Type {
		case 'u':
			uid, _ = control.ScanUlong(rec.Text)
		case 'p':
			pid, _ = control.ScanUlong(rec.Text)
		case 'F':
			sender = rec.Text
			if _, err := info.Write(queue.AppendRecord(nil, 'F', sender)); err != nil {
				s.log.line("warning: trouble writing to ", s.relPath("info", id))
				fail()
				return
			}
			s.log.line("info msg ", strconv.FormatUint(id, 10), ": bytes ", strconv.FormatInt(mst.Size(), 10),
				" from <", logSafe(sender), "> qp ", strconv.Itoa(pid), " uid ", strconv.Itoa(uid))
		case 'T':
			addr, local := s.set.rw.Rewrite(rec.Text)
			c := chanRemote
			if local {
				c = chanLocal
			}
			if chanFiles[c] == nil {
				f, err := os.OpenFile(s.path(chanDir[c], id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					s.log.line("warning: unable to create ", s.relPath(chanDir[c], id))
					fail()
					return
				}
				chanFiles[c], chanBufs[c] = f, bufio.NewWriter(f)
			}
			chanBufs[c].Write(queue.AppendRecord(nil, 'T', addr))
		default:
			s.log.line("warning: unknown record type in ", todoName)
			fail()
			return
		}
	}
	if err := info.Sync(); err != nil {
		s.log.line("warning: trouble fsyncing ", s.relPath("info", id))
		fail()
		return
	}
	for c, f := range chanFiles {
		if f == nil {
			continue
		}
		if err := chanBufs[c].Flush(); err != nil {
			s.log.line("warning: trouble writing to ", s.relPath(chanDir[c], id))
			fail()
			return
		}
		if err := f.Sync(); err != nil {
			s.log.line("warning: trouble fsyncing ", s.relPath(chanDir[c], id))
			fail()
			return
		}
	}
	ist, err := info.Stat()
	if err != nil {
		s.log.line("warning: unable to stat ", s.relPath("info", id))
		fail()
		return
	}
	if !s.cleanup("todo/" + strconv.FormatUint(id, 10)) {
		s.log.line("warning: qmail-clean unable to clean up ", todoName)
		fail()
		return
	}
	now := s.now()
	m := &message{id: id, birth: ist.ModTime(), sender: sender}
	for c := range chanFiles {
		if chanFiles[c] != nil {
			m.pending[c] = true
			m.next[c] = now
			s.schedule(m, c)
		}
	}
	s.msgs[id] = m
	if !m.pending[chanLocal] && !m.pending[chanRemote] {
		s.complete[id] = now
	}
}

// scanInfo rebuilds the schedule from an existing queue at startup: the
// birth of a message is the mtime of info/N, the next attempt of a
// channel the mtime of its channel file.
func (s *Sender) scanInfo() {
	now := s.now()
	for split := 0; split < queue.Split; split++ {
		entries, err := os.ReadDir(filepath.Join(s.qdir, "info", strconv.Itoa(split)))
		if err != nil {
			s.log.line("warning: unable to opendir info/", strconv.Itoa(split))
			continue
		}
		for _, e := range entries {
			id, ok := parseID(e.Name())
			if !ok || id%queue.Split != uint64(split) {
				continue
			}
			m, err := s.readInfo(id)
			if err != nil {
				s.log.line("warning: unable to stat ", s.relPath("info", id), "; will try again later")
				continue
			}
			for c := 0; c < numChannels; c++ {
				st, err := os.Stat(s.path(chanDir[c], id))
				if err == nil {
					m.pending[c] = true
					m.next[c] = st.ModTime()
					s.schedule(m, c)
				}
			}
			s.msgs[id] = m
			if !m.pending[chanLocal] && !m.pending[chanRemote] {
				s.complete[id] = now
			}
		}
	}
}

// readInfo reads info/N: the sender and, from its mtime, the birth.
func (s *Sender) readInfo(id uint64) (*message, error) {
	f, err := os.Open(s.path("info", id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	rec, err := queue.NewRecordReader(f, maxRecord).Next()
	if err != nil {
		return nil, err
	}
	if rec.Type != 'F' {
		return nil, errors.New("info file without sender")
	}
	return &message{id: id, birth: st.ModTime(), sender: rec.Text}, nil
}

// saveRetryTimes stamps each pending channel file with its next attempt
// time, so that a restarted qmail-send keeps the schedule. A channel file
// whose pass was cut short keeps its times, as in qmail: the recipients
// the pass did not reach are due at once, not at the next retry.
func (s *Sender) saveRetryTimes() {
	for _, m := range s.msgs {
		for c := 0; c < numChannels; c++ {
			if !m.pending[c] || m.pass[c] != nil {
				continue
			}
			t := m.next[c]
			if err := os.Chtimes(s.path(chanDir[c], m.id), t, t); err != nil {
				s.log.line("warning: unable to utime ", s.relPath(chanDir[c], m.id), "; message will be retried too soon")
			}
		}
	}
}

// retryCompletions completes the messages that are due for it.
func (s *Sender) retryCompletions() {
	if s.exitASAP {
		return
	}
	now := s.now()
	for id, t := range s.complete {
		if t.After(now) {
			continue
		}
		delete(s.complete, id)
		if m := s.msgs[id]; m != nil {
			s.completeMessage(m)
		}
	}
}

// completeMessage finishes a message whose channels are all done: the
// bounce, "end msg", info/N, then mess/N and intd/N through qmail-clean.
func (s *Sender) completeMessage(m *message) {
	retry := func() { s.complete[m.id] = s.now().Add(sleepSysFail) }
	if exists(s.path("todo", m.id)) {
		// Queued again under the same inode before we finished: the
		// todo scan owns it now.
		return
	}
	if !s.injectBounce(m) {
		retry()
		return
	}
	idStr := strconv.FormatUint(m.id, 10)
	s.log.line("end msg ", idStr)
	if err := os.Remove(s.path("info", m.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.line("warning: unable to unlink ", s.relPath("info", m.id), "; will try again later")
		retry()
		return
	}
	delete(s.msgs, m.id)
	if !s.cleanup("foop/" + idStr) {
		s.log.line("warning: qmail-clean unable to clean up foop/", idStr)
	}
}

// sweep hands qmail-clean the leftovers of interrupted qmail-queue runs:
// mess files older than 36 hours (atime) with neither info nor todo.
func (s *Sender) sweep() {
	now := s.now()
	for split := 0; split < queue.Split; split++ {
		entries, err := os.ReadDir(filepath.Join(s.qdir, "mess", strconv.Itoa(split)))
		if err != nil {
			continue
		}
		for _, e := range entries {
			id, ok := parseID(e.Name())
			if !ok || s.msgs[id] != nil {
				continue
			}
			st, err := os.Stat(s.path("mess", id))
			if err != nil {
				continue
			}
			sys, ok := st.Sys().(*syscall.Stat_t)
			if !ok {
				continue
			}
			atime := time.Unix(sys.Atim.Sec, sys.Atim.Nsec)
			if atime.Add(ossified).After(now) {
				continue
			}
			if exists(s.path("info", id)) || exists(s.path("todo", id)) {
				continue
			}
			if !s.cleanup("foop/" + strconv.FormatUint(id, 10)) {
				s.log.line("warning: qmail-clean unable to clean up foop/", strconv.FormatUint(id, 10))
			}
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
