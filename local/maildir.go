package local

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/fsutil"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MaildirTimeout is qmail's alarm on one maildir delivery.
const MaildirTimeout = 24 * time.Hour

// MaildirNamer makes the unique names of maildir(5) deliveries:
// TIME.PID.HOST. qmail forks a child per delivery, so its pid alone tells
// two deliveries of one second apart; we deliver in one process, so the
// second and later deliveries of a process add a sequence number to the
// pid part: TIME.PID_SEQ.HOST. A '/' or ':' in the host name would break
// the file name (or the maildir info suffix), so they are written as
// \057 and \072, as maildir readers expect. It is safe for concurrent
// use.
type MaildirNamer struct {
	pid  int
	host string

	mu  sync.Mutex
	seq int
}

// NewMaildirNamer takes the process id and the host name (gethostname,
// at most 64 bytes as in qmail).
func NewMaildirNamer(pid int, host string) *MaildirNamer {
	if len(host) > 64 {
		host = host[:64]
	}
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return &MaildirNamer{pid: pid, host: host}
}

// Next is the name of the next delivery at time t.
func (n *MaildirNamer) Next(t time.Time) string {
	n.mu.Lock()
	n.seq++
	seq := n.seq
	n.mu.Unlock()
	if seq == 1 {
		return fmt.Sprintf("%d.%d.%s", t.Unix(), n.pid, n.host)
	}
	return fmt.Sprintf("%d.%d_%d.%s", t.Unix(), n.pid, seq, n.host)
}

// maildirDelivery carries what a maildir delivery needs besides the
// message: tests replace sleep and the clock.
type maildirDelivery struct {
	namer *MaildirNamer
	now   func() time.Time
	sleep func(time.Duration)
	// started is called with the tmp file name once it exists, so the
	// caller's timeout can remove it.
	started func(tmp string)
	// buf buffers the file; nil makes one (a worker keeps them from
	// delivery to delivery).
	buf *bufio.Writer
}

// deliver writes rpline, dtline and the message into dir/tmp, makes it
// durable, links it into dir/new and syncs dir/new, so that a message
// in new/ is complete and survives a crash.
func (d *maildirDelivery) deliver(dir string, msg io.Reader, rpline, dtline string) error {
	tempErr := temp("Temporary error on maildir delivery. (#4.3.0)")
	st, err := os.Stat(dir)
	if err == nil && !st.IsDir() {
		err = &fs.PathError{Op: "chdir", Path: dir, Err: errors.New("not a directory")}
	}
	if err != nil {
		if IsTemp(err) {
			return tempErr
		}
		return temp("Unable to chdir to maildir. (#4.2.1)")
	}
	// qmail stats tmp/NAME and creates it only when absent, sleeping
	// and trying another name otherwise; the exclusive create alone
	// says the same in one system call.
	var name, tmp string
	var f *os.File
	for try := 0; ; try++ {
		name = d.namer.Next(d.now())
		tmp = filepath.Join(dir, "tmp", name)
		var err error
		if f, err = fsutil.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
			break
		}
		// A file by that name should never exist: the name is
		// unique to this process.
		if !errors.Is(err, fs.ErrExist) || try == 2 {
			return tempErr
		}
		d.sleep(2 * time.Second)
	}
	if d.started != nil {
		d.started(tmp)
	}
	fail := func(e error) error {
		f.Close()
		os.Remove(tmp)
		return e
	}
	if d.buf == nil {
		d.buf = bufio.NewWriterSize(f, 64<<10)
	}
	w := d.buf
	w.Reset(f)
	defer w.Reset(nil)
	w.WriteString(rpline)
	w.WriteString(dtline)
	if _, err := copyMessage(w, msg); err != nil {
		var rerr *readError
		if errors.As(err, &rerr) {
			return fail(temp("Unable to read message. (#4.3.0)"))
		}
		return fail(tempErr)
	}
	if err := w.Flush(); err != nil {
		return fail(tempErr)
	}
	if err := f.Sync(); err != nil {
		return fail(tempErr)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return tempErr
	}
	newName := filepath.Join(dir, "new", name)
	if err := os.Link(tmp, newName); err != nil {
		os.Remove(tmp)
		return tempErr
	}
	os.Remove(tmp)
	if err := fsutil.SyncDir(filepath.Join(dir, "new")); err != nil {
		// The link may not be durable: take it back and let the
		// delivery be retried rather than report a success that a
		// crash could undo.
		os.Remove(newName)
		return tempErr
	}
	return nil
}
