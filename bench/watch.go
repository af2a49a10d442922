package bench

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// DirCounter counts the files arriving in a directory (a maildir's new/,
// where every delivery links or renames one file) from inotify events,
// so that watching the servers costs a read of a few events per poll
// instead of a listing of thousands of names: the harness shares the
// machine with the servers it measures. The directory is listed only to
// confirm the count once it reaches the number wanted, and after an
// event queue overflow.
type DirCounter struct {
	dir      string
	fd       int
	events   int
	overflow bool
	buf      []byte
}

// NewDirCounter starts counting the files that arrive in dir from now on.
func NewDirCounter(dir string) (*DirCounter, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	return &DirCounter{dir: dir, fd: fd, buf: make([]byte, 64<<10)}, nil
}

// Count is the number of files in the directory, for a run that wants
// want of them: the events seen so far, or a listing of the directory
// once they reach want (or were lost).
func (c *DirCounter) Count(want int) (int, error) {
	if err := c.drain(); err != nil {
		return 0, err
	}
	if c.overflow || c.events >= want {
		return CountDir(c.dir)
	}
	return c.events, nil
}

// drain reads the events queued so far.
func (c *DirCounter) drain() error {
	for {
		n, err := unix.Read(c.fd, c.buf)
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("inotify read: %w", err)
		}
		c.events += countEvents(c.buf[:n], &c.overflow)
	}
}

// countEvents counts the file events in b, a read of inotify events, and
// notes a queue overflow.
func countEvents(b []byte, overflow *bool) int {
	n := 0
	for len(b) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:8])
		size := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:16]))
		if size > len(b) {
			break
		}
		switch {
		case mask&unix.IN_Q_OVERFLOW != 0:
			*overflow = true
		case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 && mask&unix.IN_ISDIR == 0:
			n++
		}
		b = b[size:]
	}
	return n
}

// Close stops counting.
func (c *DirCounter) Close() error { return unix.Close(c.fd) }
