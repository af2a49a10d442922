package local

import (
	"errors"
	"syscall"
)

// errnoText holds qmail's own wording for system errors (error_str.c):
// qmail-local's error reports quote it, and they are what administrators
// grep their logs for, so we keep qmail's words rather than strerror's.
var errnoText = map[syscall.Errno]string{
	syscall.EINTR:        "interrupted system call",
	syscall.ENOMEM:       "out of memory",
	syscall.ENOENT:       "file does not exist",
	syscall.ETXTBSY:      "text busy",
	syscall.EIO:          "input/output error",
	syscall.EEXIST:       "file already exists",
	syscall.ETIMEDOUT:    "timed out",
	syscall.EINPROGRESS:  "operation in progress",
	syscall.EAGAIN:       "temporary failure",
	syscall.EPIPE:        "broken pipe",
	syscall.EPERM:        "permission denied",
	syscall.EACCES:       "access denied",
	syscall.ENXIO:        "device not configured",
	syscall.E2BIG:        "argument list too long",
	syscall.ENOEXEC:      "exec format error",
	syscall.EBADF:        "file descriptor not open",
	syscall.ECHILD:       "no child processes",
	syscall.EDEADLK:      "operation would cause deadlock",
	syscall.EBUSY:        "device busy",
	syscall.EXDEV:        "cross-device link",
	syscall.ENODEV:       "device does not support operation",
	syscall.ENOTDIR:      "not a directory",
	syscall.EISDIR:       "is a directory",
	syscall.EINVAL:       "invalid argument",
	syscall.ENFILE:       "system cannot open more files",
	syscall.EMFILE:       "process cannot open more files",
	syscall.ENOTTY:       "not a tty",
	syscall.EFBIG:        "file too big",
	syscall.ENOSPC:       "out of disk space",
	syscall.ESPIPE:       "unseekable descriptor",
	syscall.EROFS:        "read-only file system",
	syscall.EMLINK:       "too many links",
	syscall.ELOOP:        "symbolic link loop",
	syscall.ENAMETOOLONG: "file name too long",
	syscall.ENOTEMPTY:    "directory not empty",
	syscall.EUSERS:       "too many users",
	syscall.EDQUOT:       "disk quota exceeded",
	syscall.ESTALE:       "stale NFS file handle",
	syscall.ENOLCK:       "no locks available",
	syscall.ENOSYS:       "system call not available",
}

// ErrText is qmail's text for the system error inside err (error_str).
// Errors that carry no errno give their own text.
func ErrText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if t, ok := errnoText[errno]; ok {
			return t
		}
		return errno.Error()
	}
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// IsTemp reports whether err is one of the errors qmail treats as
// temporary (error_temp.c): worth retrying later rather than bouncing.
func IsTemp(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EINTR, syscall.ENOMEM, syscall.ETXTBSY, syscall.EIO,
		syscall.ETIMEDOUT, syscall.EAGAIN, syscall.EDEADLK, syscall.EBUSY,
		syscall.ENFILE, syscall.EMFILE, syscall.EFBIG, syscall.ENOSPC,
		syscall.ENETDOWN, syscall.ENETUNREACH, syscall.ENETRESET,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.ENOBUFS,
		syscall.ETOOMANYREFS, syscall.ECONNREFUSED, syscall.EHOSTDOWN,
		syscall.EHOSTUNREACH, syscall.EUSERS, syscall.EDQUOT,
		syscall.ESTALE, syscall.ENOLCK:
		return true
	}
	return false
}
