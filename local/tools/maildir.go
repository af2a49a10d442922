package tools

import (
	"bufio"
	"errors"
	"github.com/goqmail/goqmail/internal/fsutil"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/local"
)

// Maildirmake is maildirmake(1): create a maildir (the directory and its
// tmp, new and cur) accessible to its owner only.
func Maildirmake(args []string, p IO) int {
	const fatal = "maildirmake: fatal: "
	syscall.Umask(0o077)
	if len(args) < 1 {
		return p.die(100, "maildirmake: usage: maildirmake name")
	}
	dir := args[0]
	if err := os.Mkdir(dir, 0o700); err != nil {
		return p.die(111, fatal, "unable to mkdir ", dir, ": ", local.ErrText(err))
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return p.die(111, fatal, "unable to mkdir ", dir, "/", sub, ": ", local.ErrText(err))
		}
	}
	return 0
}

// staleTmp is how old (by access time) a file in a maildir's tmp/ must be
// before maildir2mbox removes it: 36 hours, as in qmail.
const staleTmp = 36 * time.Hour

// maildirMessage is one message found in new/ or cur/.
type maildirMessage struct {
	name  string // relative to the maildir: new/... or cur/...
	mtime time.Time
}

// Maildir2mbox is maildir2mbox(1): move every message of $MAILDIR to
// the end of the mbox $MAIL, through the temporary file $MAILTMP, then
// remove them from the maildir. The mbox is locked during the move and
// replaced atomically; messages are removed only once the new mbox is
// durable.
func Maildir2mbox(args []string, p IO) int {
	const fatal = "maildir2mbox: fatal: "
	syscall.Umask(0o077)
	mbox, ok := p.Getenv("MAIL")
	if !ok {
		return p.die(111, fatal, "MAIL not set")
	}
	mboxTmp, ok := p.Getenv("MAILTMP")
	if !ok {
		return p.die(111, fatal, "MAILTMP not set")
	}
	maildir, ok := p.Getenv("MAILDIR")
	if !ok {
		return p.die(111, fatal, "MAILDIR not set")
	}
	// Relative $MAIL and $MAILTMP are relative to the maildir, as in
	// qmail, which changes into it first.
	if err := os.Chdir(maildir); err != nil {
		return p.die(111, fatal, "unable to chdir to ", maildir, ": ", local.ErrText(err))
	}
	cleanTmp(time.Now())
	msgs, err := scanMaildir(time.Now())
	if err != nil {
		return p.die(111, fatal, err.Error())
	}
	if len(msgs) == 0 {
		return 0
	}

	lock, err := os.OpenFile(mbox, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err == nil {
		defer lock.Close()
		err = flockWait(lock)
	}
	if err != nil {
		return p.die(111, fatal, "unable to lock ", mbox, ": ", local.ErrText(err))
	}
	old, err := os.Open(mbox)
	if err != nil {
		return p.die(111, fatal, "unable to read ", mbox, ": ", local.ErrText(err))
	}
	defer old.Close()
	out, err := os.OpenFile(mboxTmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return p.die(111, fatal, "unable to create ", mboxTmp, ": ", local.ErrText(err))
	}
	defer out.Close()
	writeFailed := func(err error) int {
		return p.die(111, fatal, "unable to write to ", mboxTmp, ": ", local.ErrText(err))
	}
	w := bufio.NewWriterSize(out, 64<<10)
	if _, err := copyFrom(w, old); err != nil {
		var rerr *readErr
		if errors.As(err, &rerr) {
			return p.die(111, fatal, "unable to read ", mbox, ": ", local.ErrText(rerr.err))
		}
		return writeFailed(err)
	}
	for _, m := range msgs {
		if err := appendMaildirMessage(w, m); err != nil {
			var rerr *readErr
			if errors.As(err, &rerr) {
				return p.die(111, fatal, "unable to read $MAILDIR/", m.name, ": ", local.ErrText(rerr.err))
			}
			return writeFailed(err)
		}
	}
	if err := w.Flush(); err != nil {
		return writeFailed(err)
	}
	if err := out.Sync(); err != nil {
		return writeFailed(err)
	}
	if err := out.Close(); err != nil {
		return writeFailed(err)
	}
	if err := os.Rename(mboxTmp, mbox); err != nil {
		return p.die(111, fatal, "unable to move ", mboxTmp, " to ", mbox, ": ", local.ErrText(err))
	}
	// The rename must be durable before the messages go: otherwise a
	// crash could lose them from both places.
	if err := fsutil.SyncDir(filepath.Dir(mbox)); err != nil {
		return p.die(111, fatal, "unable to move ", mboxTmp, " to ", mbox, ": ", local.ErrText(err))
	}
	for _, m := range msgs {
		if err := os.Remove(m.name); err != nil {
			p.die(0, "maildir2mbox: warning: $MAILDIR/", m.name, " will be delivered twice; unable to unlink: ", local.ErrText(err))
		}
	}
	return 0
}

// flockWait takes an exclusive lock, waiting as long as it takes.
func flockWait(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// cleanTmp removes files from tmp/ not accessed for 36 hours: deliveries
// that died half-way.
func cleanTmp(now time.Time) {
	entries, err := os.ReadDir("tmp")
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		name := filepath.Join("tmp", e.Name())
		var st syscall.Stat_t
		if syscall.Stat(name, &st) != nil {
			continue
		}
		if now.Unix() > st.Atim.Sec+int64(staleTmp/time.Second) {
			os.Remove(name)
		}
	}
}

// scanMaildir lists the messages of new/ and cur/ older than now (by
// modification time, which keeps the order stable against deliveries in
// progress), oldest first.
func scanMaildir(now time.Time) ([]maildirMessage, error) {
	var msgs []maildirMessage
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(sub)
		if err != nil {
			return nil, errors.New("unable to scan $MAILDIR/" + sub + ": " + local.ErrText(err))
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			name := sub + "/" + e.Name()
			st, err := os.Stat(name)
			if err != nil || st.ModTime().Unix() >= now.Unix() {
				continue
			}
			msgs = append(msgs, maildirMessage{name: name, mtime: st.ModTime()})
		}
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].mtime.Unix() < msgs[j].mtime.Unix() })
	return msgs, nil
}

// appendMaildirMessage writes one maildir message in mbox form: a From_
// line made from its Return-Path line (when it has one) and its time,
// then the quoted message and an empty line. qmail's maildir2mbox drops a
// last line that lacks a newline; we keep it and end it with one.
func appendMaildirMessage(w *bufio.Writer, m maildirMessage) error {
	f, err := os.Open(m.name)
	if err != nil {
		return &readErr{err}
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	first, err := r.Peek(1024)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return &readErr{err}
	}
	w.WriteString(fromLine(first, m.mtime))
	mw := local.NewMboxWriter(w)
	if _, err := copyFrom(mw, r); err != nil {
		return err
	}
	return mw.Finish()
}

// fromLine builds maildir2mbox's From_ line from the start of a message:
// "From " + the Return-Path address with spaces and tabs as '-' (or
// MAILER-DAEMON for <>, or XXX without a Return-Path) + the time.
func fromLine(start []byte, t time.Time) string {
	sender := "XXX"
	const rp = "Return-Path: <"
	if nl := strings.IndexByte(string(start), '\n'); nl >= 0 && strings.HasPrefix(string(start[:nl]), rp) {
		line := string(start[:nl+1])
		if line[len(rp)] == '>' {
			sender = "MAILER-DAEMON"
		} else {
			// qmail takes everything up to the last two bytes, ">\n".
			addr := line[len(rp):max(len(rp), len(line)-2)]
			sender = strings.NewReplacer(" ", "-", "\t", "-").Replace(addr)
		}
	}
	return "From " + sender + " " + local.CTime(t)
}

// readErr marks a read failure, which is reported unlike a write one.
type readErr struct{ err error }

func (e *readErr) Error() string { return e.err.Error() }

// copyFrom copies r to w, telling read errors (*readErr) from write ones.
func copyFrom(w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, &readErr{err}
		}
	}
}
