package control

import (
	"errors"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Watch tells a long-running server whether the control files it read
// may have changed since, so that it can keep what it read instead of
// reading the files for every connection as qmail's programs do, and
// still see a change at the next connection after it is made.
//
// It watches control/ with inotify: any entry created, written, renamed,
// removed or changed in its attributes counts as a change, and so does
// control/ itself becoming another directory (a symbolic link such as
// /var/qmail/control -> /etc/qmail pointed elsewhere). inotify does not
// see a file changed through another name, so files that include a
// symbolic link or a file with several hard links are not watchable
// (Reset): those are read for every connection, as before.
//
// A Watch is for one goroutine at a time.
type Watch struct {
	dir   string
	names []string
	fd    int // inotify descriptor, -1 when inotify is unavailable
	buf   []byte
	// identity of control/ when Reset last ran
	dev, ino uint64
	// unchanged is set by Reset and cleared by the first change seen.
	unchanged bool
}

// watchMask is every event that can change what a control file says.
const watchMask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_DELETE |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// NewWatch watches home/control for the named files. It never fails:
// where inotify cannot be used, Changed is always true and Reset always
// false, so the caller reads the files every time. Close releases it.
func NewWatch(home string, names ...string) *Watch {
	w := &Watch{dir: filepath.Join(home, "control"), names: names, fd: -1}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return w
	}
	w.fd, w.buf = fd, make([]byte, 4096) // Reset adds the watch
	return w
}

// Changed reports whether anything may have changed since the last
// Reset (always true before the first): an event on control/, or
// control/ no longer the same directory. It costs a read of the
// (normally empty) event queue and a stat.
func (w *Watch) Changed() bool {
	if !w.unchanged {
		return true
	}
	if w.drain() {
		w.unchanged = false
		return true
	}
	var st unix.Stat_t
	if err := unix.Stat(w.dir, &st); err != nil || st.Dev != w.dev || st.Ino != w.ino {
		w.unchanged = false
	}
	return !w.unchanged
}

// Reset is called right before the files are read again: the events so
// far are consumed and control/'s identity is noted, so that a change
// made while the caller reads is reported by the next Changed. It
// reports whether the files are watchable: each named file a plain file
// with one link, or missing. A caller keeps what it reads only then.
func (w *Watch) Reset() (watchable bool) {
	w.unchanged = false
	if w.fd < 0 {
		return false
	}
	// Watch again: control/ may be a new directory (re-created, or the
	// target of a changed symbolic link); for the same one this only
	// renews the watch.
	if _, err := unix.InotifyAddWatch(w.fd, w.dir, watchMask); err != nil {
		return false
	}
	w.drain()
	var st unix.Stat_t
	if err := unix.Stat(w.dir, &st); err != nil {
		return false
	}
	w.dev, w.ino = st.Dev, st.Ino
	w.unchanged = true
	for _, name := range w.names {
		var fst unix.Stat_t
		err := unix.Lstat(filepath.Join(w.dir, name), &fst)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil || fst.Mode&unix.S_IFMT != unix.S_IFREG || fst.Nlink != 1 {
			return false
		}
	}
	return true
}

// drain empties the event queue; it reports whether there was anything
// in it (or the queue cannot be read).
func (w *Watch) drain() bool {
	seen := false
	for {
		n, err := unix.Read(w.fd, w.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return seen
		}
		if err != nil || n <= 0 {
			return true
		}
		seen = true
	}
}

// Close releases the inotify descriptor.
func (w *Watch) Close() error {
	if w.fd < 0 {
		return nil
	}
	err := unix.Close(w.fd)
	w.fd = -1
	w.unchanged = false
	return err
}
