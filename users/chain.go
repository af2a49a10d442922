package users

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/control/cdb"
	"github.com/goqmail/goqmail/internal/fsutil"
)

// Chain resolves a local part the way qmail-lspawn does: users/cdb, else
// qmail-getpw's passwd rules, else the alias user with dash "-" and ext
// the whole local part.
type Chain struct {
	// Home is the qmail home; users/cdb is read from Home/users/cdb.
	Home string
	// Accounts is the account database for the getpw step; nil means
	// SystemAccounts.
	Accounts Accounts
	// Alias, when not nil, is the account of last resort instead of the
	// passwd entry of "alias". An unprivileged installation (a
	// $QMAILHOME owned by an ordinary user, as in tests and demos) has
	// no alias account: there CallerAlias gives the calling user with
	// home $QMAILHOME/alias, so postmaster & co. are delivered by
	// $QMAILHOME/alias/.qmail-* files as in a real installation.
	Alias *Passwd

	db openCDB
}

// Resolve returns where mail for local goes. Errors are *Error with
// qmail-lspawn's codes: ExitCDB for an unreadable users/cdb, ExitUsage
// for a malformed users/cdb record, and qmail-getpw's codes. It may be
// called from several goroutines at once.
func (c *Chain) Resolve(local string) (Entry, error) {
	e, ok, err := c.db.lookup(filepath.Join(c.Home, "users", "cdb"), local)
	if errors.Is(err, ErrBadRecord) {
		return Entry{}, &Error{ExitUsage, err}
	}
	if err != nil {
		return Entry{}, &Error{ExitCDB, fmt.Errorf("trouble reading users/cdb: %w", err)}
	}
	if ok {
		return e, nil
	}
	accounts := c.Accounts
	if accounts == nil {
		accounts = SystemAccounts{}
	}
	return GetPW(accounts, local, c.Alias)
}

// CallerAlias is the alias account of an unprivileged qmail home: the
// user running the process, with home home/alias.
func CallerAlias(home string) (*Passwd, error) {
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	abs, err := filepath.Abs(filepath.Join(home, "alias"))
	if err != nil {
		return nil, fmt.Errorf("alias home: %w", err)
	}
	return &Passwd{Name: name, UID: uid, GID: gid, Home: abs}, nil
}

// DefaultAlias is the alias account for a qmail home: nil (the passwd
// entry of "alias", as qmail) for the real home /var/qmail, and
// CallerAlias for any other home, which only an unprivileged
// installation selected through $QMAILHOME has.
func DefaultAlias(home string) (*Passwd, error) {
	if home == control.DefaultHome {
		return nil, nil
	}
	return CallerAlias(home)
}

// OwnAccount is the account database of an unprivileged installation:
// only the account of the running user exists in it. Such a home cannot
// deliver as anybody else, so no other system user may receive its
// mail through qmail-getpw's rules; their local parts go to the alias
// user, as on a server where they have no account.
type OwnAccount struct {
	// Accounts is the database looked in; nil means SystemAccounts.
	Accounts Accounts
	// UID is the running user's uid.
	UID int
}

// User returns the account named name only when it is the running user's.
func (o OwnAccount) User(name string) (*Passwd, error) {
	accounts := o.Accounts
	if accounts == nil {
		accounts = SystemAccounts{}
	}
	pw, err := accounts.User(name)
	if err != nil || pw == nil || pw.UID != o.UID {
		return nil, err
	}
	return pw, nil
}

// HomeOwner is the underlying database's.
func (o OwnAccount) HomeOwner(dir string) (int, error) {
	if o.Accounts == nil {
		return SystemAccounts{}.HomeOwner(dir)
	}
	return o.Accounts.HomeOwner(dir)
}

// openCDB keeps users/cdb open from one lookup to the next, where
// qmail-lspawn opens it for each delivery, and remembers its answers: a
// stat per lookup tells whether it is still the same, unchanged file
// (fsutil.Stamp).
type openCDB struct {
	mu      sync.Mutex
	db      *cdb.Reader // nil: not open
	stamp   fsutil.Stamp
	answers map[string]cdbAnswer // from db, by local part
}

// cdbAnswer is what Lookup found in the open users/cdb for a local part.
type cdbAnswer struct {
	entry Entry
	found bool
}

// maxCDBAnswers bounds the answers kept: past it they are forgotten all
// at once (a busy server's recipients come back quickly).
const maxCDBAnswers = 4096

// lookup is LookupFile on the users/cdb at path.
func (o *openCDB) lookup(path, local string) (e Entry, ok bool, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	stamp, err := fsutil.StampOf(path)
	if err != nil {
		o.close()
		if errors.Is(err, fs.ErrNotExist) {
			return Entry{}, false, nil
		}
		return Entry{}, false, err
	}
	if o.db == nil || stamp != o.stamp {
		o.close()
		db, err := cdb.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return Entry{}, false, nil
		}
		if err != nil {
			return Entry{}, false, err
		}
		// The stat came before the open: a file replaced in between
		// is opened again at the next lookup.
		o.db, o.stamp = db, stamp
	}
	if a, ok := o.answers[local]; ok {
		return a.entry, a.found, nil
	}
	e, ok, err = Lookup(o.db, local)
	if err == nil {
		if o.answers == nil || len(o.answers) >= maxCDBAnswers {
			o.answers = make(map[string]cdbAnswer)
		}
		o.answers[local] = cdbAnswer{e, ok}
	}
	return e, ok, err
}

func (o *openCDB) close() {
	if o.db != nil {
		o.db.Close()
		o.db = nil
	}
	o.answers = nil
}
