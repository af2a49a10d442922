package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
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

// dirSpec is one queue directory as hier.c makes it.
type dirSpec struct {
	name  string
	owner func(*Owners) int
	mode  os.FileMode
	split bool
}

func qmailq(o *Owners) int { return o.Qmailq }
func qmails(o *Owners) int { return o.Qmails }

var layout = []dirSpec{
	{"pid", qmailq, 0o700, false},
	{"intd", qmailq, 0o700, false},
	{"todo", qmailq, 0o750, false},
	{"bounce", qmails, 0o700, false},
	{"mess", qmailq, 0o750, true},
	{"info", qmails, 0o700, true},
	{"local", qmails, 0o700, true},
	{"remote", qmails, 0o700, true},
	{"lock", qmailq, 0o750, false},
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
	root := 0
	if own != nil {
		root = own.Qmailq
	}
	if err := mkdir(dir, root, 0o750); err != nil {
		return err
	}
	for _, d := range layout {
		uid := 0
		if own != nil {
			uid = d.owner(own)
		}
		p := filepath.Join(dir, d.name)
		if err := mkdir(p, uid, d.mode); err != nil {
			return err
		}
		if !d.split {
			continue
		}
		for i := 0; i < Split; i++ {
			if err := mkdir(filepath.Join(p, strconv.Itoa(i)), uid, d.mode); err != nil {
				return err
			}
		}
	}
	lock := filepath.Join(dir, "lock")
	uid := func(f func(*Owners) int) int {
		if own == nil {
			return 0
		}
		return f(own)
	}
	if err := writeFile(filepath.Join(lock, "tcpto"), make([]byte, 1024), 0o644); err != nil {
		return err
	}
	if err := chown(filepath.Join(lock, "tcpto"), uid(func(o *Owners) int { return o.Qmailr })); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(lock, "sendmutex"), nil, 0o600); err != nil {
		return err
	}
	if err := chown(filepath.Join(lock, "sendmutex"), uid(qmails)); err != nil {
		return err
	}
	trigger := filepath.Join(lock, "trigger")
	if err := unix.Mkfifo(trigger, 0o622); err != nil {
		return fmt.Errorf("mkfifo %s: %w", trigger, err)
	}
	if err := chown(trigger, uid(qmails)); err != nil {
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
