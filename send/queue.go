package send

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/fsutil"
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

// preprocessParallel bounds how many messages of todo/ have their files
// written and fsynced at the same time.
const preprocessParallel = 32

// startSplit preprocesses todo/N in the background: its files are written
// and fsynced while the main loop goes on starting and finishing
// deliveries, and the fsyncs of several messages share the disk's
// flushes instead of waiting one after another. The result comes back as
// an evSplit event; only then is todo/N removed and the message
// scheduled, so a message is committed only once all its files are
// durable, as when qmail writes them one at a time.
func (s *Sender) startSplit(id uint64) {
	if !s.forgetForTodo(id) {
		return
	}
	s.splitting[id] = true
	rw := s.set.rw // SIGHUP replaces it in the main loop
	allow := s.directAllowed()
	go func() {
		r := &splitResult{id: id}
		s.splitTodo(r, rw, allow)
		s.events <- event{kind: evSplit, split: r}
	}()
}

// splitDone commits a message split in the background. The message
// stays in splitting until qmail-clean has answered for todo/N: a scan
// in between must not split it again. Then todo/ is scanned again if a
// scan left messages behind.
func (s *Sender) splitDone(r *splitResult) {
	s.commitTodo(r, func() { s.doneWithTodo(r.id) })
}

// doneWithTodo takes message id out of splitting: scans of todo/ may
// look at todo/id again. A scan that stopped because too many messages
// were in splitting (todoBehind) is due again at once: the messages it
// left have no trigger of their own any more.
func (s *Sender) doneWithTodo(id uint64) {
	delete(s.splitting, id)
	if s.todoBehind {
		s.todoBehind = false
		s.nextTodo = s.now()
	}
}

// forgetForTodo drops what qmail-send knows of a message that is in
// todo/ again. It is false when the message must wait: an earlier
// qmail-clean failure left it with deliveries under way.
func (s *Sender) forgetForTodo(id uint64) bool {
	if m := s.msgs[id]; m != nil {
		if m.direct != nil {
			return false // todo/N is its queue file
		}
		if m.pass[chanLocal] != nil || m.pass[chanRemote] != nil {
			return false
		}
		for c := 0; c < numChannels; c++ {
			s.unschedule(m, c)
		}
		delete(s.msgs, id)
	}
	delete(s.complete, id)
	return true
}

// splitResult is what splitTodo did for one message: its log lines, in
// order, and, when it succeeded, what the schedule needs.
type splitResult struct {
	id     uint64
	logs   []string
	failed bool // retry the todo scan soon (qmail's SLEEP_SYSFAIL)
	done   bool // every file written and fsynced: commit it
	sender string
	birth  time.Time
	chans  [numChannels]bool
	// direct is the recipient of a message to deliver straight from
	// todo/N (direct.go); no file was written.
	direct *directRecipient
}

func (r *splitResult) log(parts ...string) {
	r.logs = append(r.logs, strings.Join(parts, ""))
}

// logInfo logs qmail's "info msg" line.
func (r *splitResult) logInfo(bytes int64, sender string, pid, uid int) {
	r.log("info msg ", strconv.FormatUint(r.id, 10), ": bytes ", strconv.FormatInt(bytes, 10),
		" from <", logSafe(sender), "> qp ", strconv.Itoa(pid), " uid ", strconv.Itoa(uid))
}

func (r *splitResult) fail(parts ...string) {
	r.log(parts...)
	r.failed = true
}

// splitTodo writes info/N and the channel files of todo/N and fsyncs
// them, rewriting recipients with rw, or, for a message with one
// recipient whose channel allows it, only reads it for direct delivery.
// It touches no state of the Sender but the queue's files, and can run
// for many messages at once.
func (s *Sender) splitTodo(r *splitResult, rw *Rewriter, allow [numChannels]bool) {
	id := r.id
	todoName := s.relPath("todo", id)
	todo, err := fsutil.Open(s.path("todo", id))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.fail("warning: unable to open ", todoName)
		}
		return
	}
	defer todo.Close()
	mst, err := os.Stat(s.path("mess", id))
	if err != nil {
		r.fail("warning: unable to stat ", s.relPath("mess", id))
		return
	}
	for _, dir := range []string{"info", "local", "remote"} {
		if err := fsutil.Unlink(s.path(dir, id)); err != nil {
			r.fail("warning: unable to unlink ", s.relPath(dir, id))
			return
		}
	}
	if allow[chanLocal] || allow[chanRemote] {
		if d, ok := readDirect(todo, rw); ok && allow[d.recip.c] {
			r.log("new msg ", strconv.FormatUint(id, 10))
			r.logInfo(mst.Size(), d.sender, d.pid, d.uid)
			r.sender, r.direct, r.done = d.sender, &d.recip, true
			return
		}
		if _, err := todo.Seek(0, io.SeekStart); err != nil {
			r.fail("warning: trouble reading ", todoName)
			return
		}
	}
	info, err := fsutil.OpenFile(s.path("info", id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		r.fail("warning: unable to create ", s.relPath("info", id))
		return
	}
	defer info.Close()
	r.log("new msg ", strconv.FormatUint(id, 10))

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
	rr := queue.NewRecordReader(todo, maxRecord)
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.fail("warning: trouble reading ", todoName)
			return
		}
		switch rec.Type {
		case 'u':
			uid, _ = control.ScanUlong(rec.Text)
		case 'p':
			pid, _ = control.ScanUlong(rec.Text)
		case 'F':
			r.sender = rec.Text
			if _, err := info.Write(queue.AppendRecord(nil, 'F', r.sender)); err != nil {
				r.fail("warning: trouble writing to ", s.relPath("info", id))
				return
			}
			r.logInfo(mst.Size(), r.sender, pid, uid)
		case 'T':
			addr, local := rw.Rewrite(rec.Text)
			c := chanRemote
			if local {
				c = chanLocal
			}
			if chanFiles[c] == nil {
				f, err := fsutil.OpenFile(s.path(chanDir[c], id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					r.fail("warning: unable to create ", s.relPath(chanDir[c], id))
					return
				}
				chanFiles[c], chanBufs[c] = f, bufio.NewWriter(f)
			}
			chanBufs[c].Write(queue.AppendRecord(nil, 'T', addr))
		default:
			r.fail("warning: unknown record type in ", todoName)
			return
		}
	}
	for c, f := range chanFiles {
		if f == nil {
			continue
		}
		if err := chanBufs[c].Flush(); err != nil {
			r.fail("warning: trouble writing to ", s.relPath(chanDir[c], id))
			return
		}
	}
	// The files are fsynced at the same time; todo/N goes only when
	// all of them are durable.
	files := []*os.File{info}
	names := []string{s.relPath("info", id)}
	for c, f := range chanFiles {
		if f != nil {
			files = append(files, f)
			names = append(names, s.relPath(chanDir[c], id))
		}
	}
	for i, err := range syncAll(files) {
		if err != nil {
			r.fail("warning: trouble fsyncing ", names[i])
			return
		}
	}
	ist, err := info.Stat()
	if err != nil {
		r.fail("warning: unable to stat ", s.relPath("info", id))
		return
	}
	r.birth = ist.ModTime()
	for c := range chanFiles {
		r.chans[c] = chanFiles[c] != nil
	}
	r.done = true
}

// syncAll fsyncs the files concurrently and returns each one's error.
func syncAll(files []*os.File) []error {
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = f.Sync()
		}()
	}
	errs[0] = files[0].Sync()
	wg.Wait()
	return errs
}

// commitTodo logs what splitTodo did and, for a message whose files are
// all durable, has qmail-clean remove todo/N and then schedules its
// deliveries; finished is called when that is over.
func (s *Sender) commitTodo(r *splitResult, finished func()) {
	for _, l := range r.logs {
		s.log.line(l)
	}
	fail := func() {
		if t := s.now().Add(sleepSysFail); t.Before(s.nextTodo) {
			s.nextTodo = t
		}
	}
	if r.failed {
		fail()
	}
	if !r.done {
		finished()
		return
	}
	if r.direct != nil {
		s.commitDirect(r)
		finished()
		return
	}
	s.cleanup("todo/"+strconv.FormatUint(r.id, 10), func(ok bool) {
		defer finished()
		if !ok {
			s.log.line("warning: qmail-clean unable to clean up ", s.relPath("todo", r.id))
			fail()
			return
		}
		now := s.now()
		m := &message{id: r.id, birth: r.birth, sender: r.sender}
		for c, used := range r.chans {
			if used {
				m.pending[c] = true
				m.next[c] = now
				s.schedule(m, c)
			}
		}
		s.msgs[r.id] = m
		if !m.pending[chanLocal] && !m.pending[chanRemote] {
			s.complete[r.id] = now
		}
	})
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
		if m.direct != nil {
			continue // nothing but todo/N: preprocessed at the next start
		}
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
	if err := fsutil.Unlink(s.path("info", m.id)); err != nil {
		s.log.line("warning: unable to unlink ", s.relPath("info", m.id), "; will try again later")
		retry()
		return
	}
	delete(s.msgs, m.id)
	s.cleanup("foop/"+idStr, func(ok bool) {
		if !ok {
			s.log.line("warning: qmail-clean unable to clean up foop/", idStr)
		}
	})
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
			idStr := strconv.FormatUint(id, 10)
			s.cleanup("foop/"+idStr, func(ok bool) {
				if !ok {
					s.log.line("warning: qmail-clean unable to clean up foop/", idStr)
				}
			})
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
