package users

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/ascii"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/control/cdb"
)

// Entry is where mail for one local part goes: the arguments qmail-lspawn
// gives qmail-local (user, uid, gid, homedir, dash, ext) and qmail-getpw
// prints.
type Entry struct {
	User     string
	UID, GID int
	Home     string
	Dash     string
	Ext      string
}

// Key is the users/cdb key of an assignment: "!" + lowercased local, and
// a NUL for a simple assignment (so that a simple key never equals a
// wildcard prefix).
func (a Assignment) Key() []byte {
	key := append([]byte{'!'}, ascii.Lower(a.Local)...)
	if !a.Wildcard {
		key = append(key, 0)
	}
	return key
}

// Value is the users/cdb value of an assignment:
// user NUL uid NUL gid NUL homedir NUL dash NUL ext, without a final NUL.
func (a Assignment) Value() []byte {
	return []byte(strings.Join([]string{a.User, a.UID, a.GID, a.Home, a.Dash, a.Ext}, "\x00"))
}

// CDBBuilder adds assignments to a users/cdb under construction and
// collects the wildcard characters qmail-newu stores under the empty key.
type CDBBuilder struct {
	w         *cdb.Writer
	wildchars []byte
}

// NewCDBBuilder starts adding assignments to w.
func NewCDBBuilder(w *cdb.Writer) *CDBBuilder { return &CDBBuilder{w: w} }

// Add adds one assignment. For a wildcard with a non-empty prefix, the
// prefix's last character, as written (qmail-newu does not lowercase it),
// joins the wildcard characters.
func (b *CDBBuilder) Add(a Assignment) error {
	if a.Wildcard && a.Local != "" {
		c := a.Local[len(a.Local)-1]
		if bytes.IndexByte(b.wildchars, c) < 0 {
			b.wildchars = append(b.wildchars, c)
		}
	}
	return b.w.Add(a.Key(), a.Value())
}

// Finish adds the empty key listing the wildcard characters, which
// qmail-lspawn requires, as the last record.
func (b *CDBBuilder) Finish() error {
	return b.w.Add(nil, b.wildchars)
}

// NewU is qmail-newu: it compiles home/users/assign into home/users/cdb
// through users/cdb.tmp, synced and renamed, so a reader sees the old or
// the new database, never a mix. On any error users/cdb is untouched.
func NewU(home string) error {
	assign, err := os.Open(filepath.Join(home, "users", "assign"))
	if err != nil {
		return fmt.Errorf("unable to open users/assign: %w", err)
	}
	defer assign.Close()
	return cdb.WriteFile(filepath.Join(home, "users", "cdb"), func(w *cdb.Writer) error {
		b := NewCDBBuilder(w)
		if err := ReadAssign(assign, b.Add); err != nil {
			return err
		}
		return b.Finish()
	})
}

// ErrNoWildcardKey is returned when users/cdb lacks the empty key
// qmail-newu always writes; qmail-lspawn treats that as a broken cdb.
var ErrNoWildcardKey = errors.New("users/cdb has no wildcard character record")

// Lookup finds local in users/cdb with qmail-lspawn's rules: the simple
// key first, then wildcard prefixes from the whole local part down to
// the empty one, trying a non-empty prefix only when its last character
// is one of the wildcard characters. For a wildcard hit, the rest of the
// local part after the prefix, in its original case, is appended to ext.
// ok is false when nothing matches. A NUL ends local, as it would in C.
func Lookup(db *cdb.Reader, local string) (e Entry, ok bool, err error) {
	if i := strings.IndexByte(local, 0); i >= 0 {
		local = local[:i]
	}
	wildchars, found, err := db.Get(nil)
	if err != nil {
		return Entry{}, false, err
	}
	if !found {
		return Entry{}, false, ErrNoWildcardKey
	}
	key := append(append([]byte{'!'}, ascii.Lower(local)...), 0)
	wild := false
	for i := len(key); i > 0; i-- {
		if !wild || i == 1 || bytes.IndexByte(wildchars, key[i-1]) >= 0 {
			value, found, err := db.Get(key[:i])
			if err != nil {
				return Entry{}, false, err
			}
			if found {
				record := value
				if wild {
					record = append(append([]byte(nil), value...), local[i-1:]...)
				}
				e, err := parseRecord(append(record, 0))
				if err != nil {
					return Entry{}, false, fmt.Errorf("users/cdb entry %q: %w", key[:i], err)
				}
				return e, true, nil
			}
		}
		wild = true
	}
	return Entry{}, false, nil
}

// LookupFile is Lookup on the users/cdb of a qmail home. A missing
// users/cdb is no error: ok is false, and the caller goes on to getpw.
func LookupFile(home, local string) (e Entry, ok bool, err error) {
	db, err := cdb.Open(filepath.Join(home, "users", "cdb"))
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	defer db.Close()
	return Lookup(db, local)
}

// ErrBadRecord reports a users/cdb value or qmail-getpw output without
// its six NUL-terminated fields (qmail-lspawn's "internal bug" exit).
var ErrBadRecord = errors.New("record lacks user, uid, gid, home, dash or ext")

// parseRecord splits user NUL uid NUL gid NUL home NUL dash NUL ext NUL,
// the form qmail-lspawn hands to qmail-local. Anything after the sixth
// NUL is ignored; uid and gid are read as scan_ulong does.
func parseRecord(b []byte) (Entry, error) {
	var f [6]string
	for i := range f {
		j := bytes.IndexByte(b, 0)
		if j < 0 {
			return Entry{}, ErrBadRecord
		}
		f[i], b = string(b[:j]), b[j+1:]
	}
	uid, _ := control.ScanUlong(f[1])
	gid, _ := control.ScanUlong(f[2])
	return Entry{User: f[0], UID: uid, GID: gid, Home: f[3], Dash: f[4], Ext: f[5]}, nil
}

// ParseRecord parses qmail-getpw's output (user, uid, gid, home, dash,
// ext, each ended by NUL).
func ParseRecord(b []byte) (Entry, error) { return parseRecord(b) }

// Record renders e as qmail-getpw prints it.
func (e Entry) Record() []byte {
	return fmt.Appendf(nil, "%s\x00%d\x00%d\x00%s\x00%s\x00%s\x00", e.User, e.UID, e.GID, e.Home, e.Dash, e.Ext)
}
