package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/goqmail/goqmail/internal/fsutil"
)

// Split is qmail's conf-split: queue subdirectories are named by the
// message's inode number modulo Split.
const Split = 23

// Owners are the ids that own the queue (hier.c). A nil *Owners leaves
// everything owned by the caller, for an unprivileged home.
type Owners struct {
	Qmailq, Qmails, Qmailr int // uids
	Qmail                  int // gid of group qmail
}

// Dir is one queue directory as hier.c makes it.
type Dir struct {
	Name  string      // relative to the queue; "" is the queue itself
	Owner string      // the account owning it: "qmailq" or "qmails"
	Mode  os.FileMode // permission bits
	Split bool        // holds subdirectories 0..Split-1 with the same owner and mode
}

// Layout is the queue's directories in creation order (hier.c). Create
// makes them and qmailctl check verifies them.
var Layout = []Dir{
	{"", "qmailq", 0o750, false},
	{"pid", "qmailq", 0o700, false},
	{"intd", "qmailq", 0o700, false},
	{"todo", "qmailq", 0o750, false},
	{"bounce", "qmails", 0o700, false},
	{"mess", "qmailq", 0o750, true},
	{"info", "qmails", 0o700, true},
	{"local", "qmails", 0o700, true},
	{"remote", "qmails", 0o700, true},
	{"lock", "qmailq", 0o750, false},
}

// uid is the uid of the named queue account.
func (o *Owners) uid(account string) int {
	switch account {
	case "qmails":
		return o.Qmails
	case "qmailr":
		return o.Qmailr
	}
	return o.Qmailq
}

// Create makes a complete empty queue at dir with qmail's modes and split
// (hier.c), including lock/tcpto, lock/sendmutex and the lock/trigger FIFO.
// It refuses to touch an existing queue.
func Create(dir string, own *Owners) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%s already exists: refusing to overwrite a queue", dir)
	}
	chown := func(path string, uid int) error {
		if own == nil {
			return nil
		}
		return os.Lchown(path, uid, own.Qmail)
	}
	mkdir := func(path string, uid int, mode os.FileMode) error {
		if err := os.Mkdir(path, mode); err != nil {
			return err
		}
		if err := chown(path, uid); err != nil {
			return err
		}
		return os.Chmod(path, mode) // not subject to umask
	}
	for _, d := range Layout {
		uid := 0
		if own != nil {
			uid = own.uid(d.Owner)
		}
		p := filepath.Join(dir, d.Name)
		if err := mkdir(p, uid, d.Mode); err != nil {
			return err
		}
		if d.Name == "" || d.Split {
			fsutil.SpreadSubdirs(p)
		}
		if !d.Split {
			continue
		}
		for i := 0; i < Split; i++ {
			if err := mkdir(filepath.Join(p, strconv.Itoa(i)), uid, d.Mode); err != nil {
				return err
			}
		}
	}
	lock := filepath.Join(dir, "lock")
	uid := func(account string) int {
		if own == nil {
			return 0
		}
		return own.uid(account)
	}
	if err := writeFile(filepath.Join(lock, "tcpto"), make([]byte, 1024), 0o644); err != nil {
		return err
	}
	if err := chown(filepath.Join(lock, "tcpto"), uid("qmailr")); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(lock, "sendmutex"), nil, 0o600); err != nil {
		return err
	}
	if err := chown(filepath.Join(lock, "sendmutex"), uid("qmails")); err != nil {
		return err
	}
	trigger := filepath.Join(lock, "trigger")
	if err := unix.Mkfifo(trigger, 0o622); err != nil {
		return fmt.Errorf("mkfifo %s: %w", trigger, err)
	}
	if err := chown(trigger, uid("qmails")); err != nil {
		return err
	}
	return os.Chmod(trigger, 0o622)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
