package users

import (
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/ascii"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// Exit codes qmail-getpw and qmail-lspawn share (qmail's qlx.h).
const (
	ExitUsage   = 112 // internal bug, malformed record
	ExitNFS     = 115 // temporary failure checking a home directory
	ExitNoAlias = 116 // no alias user
	ExitCDB     = 117 // users/cdb unreadable
	ExitSys     = 118 // temporary failure in the password lookup
)

// Error is a failure carrying the exit code qmail-getpw or qmail-lspawn
// exits with for it.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode is the qmail exit code for err: the *Error's code, else 111.
func ExitCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 111
}

// Passwd is the part of a password entry qmail uses.
type Passwd struct {
	Name     string
	UID, GID int
	Home     string
}

// Accounts is the system's account database as qmail-getpw sees it.
// Tests substitute their own.
type Accounts interface {
	// User returns the account named name, or nil and no error when
	// there is none. An error means the lookup itself failed.
	User(name string) (*Passwd, error)
	// HomeOwner returns the uid owning the directory dir.
	HomeOwner(dir string) (uid int, err error)
}

// AliasUser is qmail's conf-users "alias": the account of last resort.
const AliasUser = "alias"

// Break is conf-break, the extension delimiter.
const Break = '-'

// maxUserLen is qmail-getpw's bound: a candidate user name has fewer
// than 32 characters.
const maxUserLen = 32

// GetPW applies qmail-getpw's rules to local: the candidate user names
// are local itself and every prefix of local ending just before a "-",
// longest first, each shorter than 32 characters and lowercased. The
// first that names an account with a non-zero uid whose home directory
// exists and is owned by that uid wins; dash and ext are empty when the
// whole local part matched, else "-" and the rest after the delimiter.
// Without a match the alias account (alias, or the given one) takes the
// mail with dash "-" and ext local.
//
// alias, when not nil, replaces the password lookup of "alias" (see
// Chain.Alias). Errors are *Error with qmail-getpw's exit codes.
func GetPW(accounts Accounts, local string, alias *Passwd) (Entry, error) {
	for end := len(local); end >= 0; end-- {
		if end >= maxUserLen || (end < len(local) && local[end] != Break) {
			continue
		}
		name := ascii.Lower(local[:end])
		pw, err := accounts.User(name)
		if err != nil {
			return Entry{}, &Error{ExitSys, fmt.Errorf("looking up user %q: %w", name, err)}
		}
		if pw == nil || pw.UID == 0 {
			continue
		}
		owner, err := accounts.HomeOwner(pw.Home)
		if err != nil {
			if isTemporary(err) {
				return Entry{}, &Error{ExitNFS, fmt.Errorf("checking home of %q: %w", name, err)}
			}
			continue
		}
		if owner != pw.UID {
			continue
		}
		e := Entry{User: pw.Name, UID: pw.UID, GID: pw.GID, Home: pw.Home}
		if end < len(local) {
			e.Dash, e.Ext = "-", local[end+1:]
		}
		return e, nil
	}
	if alias == nil {
		pw, err := accounts.User(AliasUser)
		if err != nil {
			return Entry{}, &Error{ExitSys, fmt.Errorf("looking up user %q: %w", AliasUser, err)}
		}
		if pw == nil {
			return Entry{}, &Error{ExitNoAlias, fmt.Errorf("no user %q", AliasUser)}
		}
		alias = pw
	}
	return Entry{User: alias.Name, UID: alias.UID, GID: alias.GID, Home: alias.Home, Dash: "-", Ext: local}, nil
}

// isTemporary is qmail's error_temp: errors worth retrying later.
func isTemporary(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EINTR, syscall.ENOMEM, syscall.ETXTBSY, syscall.EIO,
		syscall.ETIMEDOUT, syscall.EAGAIN, syscall.ECONNREFUSED,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN,
		syscall.ENFILE, syscall.EMFILE, syscall.ENOBUFS, syscall.ECONNRESET:
		return true
	}
	return false
}

// SystemAccounts is the real account database: the C library's getpwnam
// through os/user (or /etc/passwd when built without cgo), and stat(2).
type SystemAccounts struct{}

// User looks name up. Any failure other than "no such user" is an error,
// so that a broken name service defers mail rather than misroutes it.
func (SystemAccounts) User(name string) (*Passwd, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, nil
		}
		return nil, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
	}
	return &Passwd{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir}, nil
}

// HomeOwner stats dir (following symbolic links, as stat(2)).
func (SystemAccounts) HomeOwner(dir string) (int, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("stat %s: no owner information", dir)
	}
	return int(sys.Uid), nil
}
