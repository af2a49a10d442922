// Package fsutil has the file-system steps that make a write durable,
// and a hint for where the file system puts new directories.
package fsutil

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// SyncDir fsyncs a directory, so that the names just created, linked or
// renamed in it survive a crash: on Linux a file's own fsync does not
// cover its directory entry.
func SyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &os.PathError{Op: "sync", Path: dir, Err: err}
	}
	return nil
}

// OpenFile is os.OpenFile for regular files and directories, on the hot
// paths. os.OpenFile offers every descriptor to the runtime's poller:
// it makes it non-blocking, is refused (files cannot be polled) and
// makes it blocking again, five system calls for nothing; this is one
// open and one fcntl.
func OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// Open opens a file for reading, as os.Open (see OpenFile).
func Open(name string) (*os.File, error) {
	return OpenFile(name, os.O_RDONLY, 0)
}

// TopdirFlag is FS_TOPDIR_FL (linux/fs.h, chattr +T): "the top of a
// directory hierarchy".
const TopdirFlag = 0x00020000

// SpreadSubdirs marks dir, before its subdirectories are made, as the top
// of a directory hierarchy, so that ext2/3/4's allocator puts each
// subdirectory (and so the inodes of the files made in it) in a block
// group of its own instead of all in the group of dir. A queue allocates
// and frees several inodes per message; ext4 without a journal does not
// reuse an inode freed in the last minutes and, to find a free one,
// walks past every such inode of the group, for each file it creates.
// With the queue's files spread over its split directories' groups,
// each walk is a fraction as long (docs/performance.md). Other file
// systems do not have the flag; the error is ignored: it is only a hint.
func SpreadSubdirs(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return
	}
	unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|TopdirFlag))
}

// Unlink removes the file at path; a file already gone is no error, as
// for qmail's unlink-or-ENOENT steps. Unlike os.Remove it never tries
// rmdir: a missing queue file costs one system call, not two.
func Unlink(path string) error {
	err := unix.Unlink(path)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	return &fs.PathError{Op: "unlink", Path: path, Err: err}
}

// Stamp identifies a file and its last change. What was read from a
// file still holds while a later stat gives the same Stamp: a file
// replaced by a rename (as qmail-newu, cdbmake and resolvers do) has
// another inode, one rewritten in place another size or times.
type Stamp struct {
	dev, ino   uint64
	size       int64
	mtim, ctim unix.Timespec
}

// StampOf stats path, following symbolic links.
func StampOf(path string) (Stamp, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Stamp{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return Stamp{dev: st.Dev, ino: st.Ino, size: st.Size, mtim: st.Mtim, ctim: st.Ctim}, nil
}
