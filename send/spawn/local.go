package spawn

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/goqmail/goqmail/users"
)

// Assignment is where and as whom a local part is delivered: the fields
// of a users/cdb entry or of qmail-getpw's answer.
type Assignment struct {
	User     string
	UID, GID int
	Home     string
	Dash     string
	Ext      string
}

// Lookup finds the assignment of a local part (original case). It
// returns a *LookupError for the failures qmail-lspawn reports with a
// fixed text.
type Lookup interface {
	Lookup(local string) (Assignment, error)
}

// LookupError is a lookup failure with qmail-lspawn's report for it.
type LookupError struct {
	Report string // e.g. "ZUnable to find alias user!\n"
	Err    error
}

func (e *LookupError) Error() string {
	return fmt.Sprintf("%s: %v", strings.TrimSpace(e.Report[1:]), e.Err)
}

func (e *LookupError) Unwrap() error { return e.Err }

// Local is qmail-lspawn's channel: it runs home/bin/qmail-local as the
// recipient's user.
type Local struct {
	Home           string // the qmail home; qmail-local runs there
	DefaultDeliver string // qmail-start's first argument, e.g. "./Maildir/"
	Users          Lookup
	// AsRoot is true when the spawner runs as root and must switch to
	// the recipient's ids; otherwise deliveries run as the caller.
	AsRoot bool
}

// OutputLimit is qmail-lspawn's truncreport.
func (*Local) OutputLimit() int { return 3000 }

// Command prepares "bin/qmail-local -- user home local dash ext domain
// sender defaultdelivery".
func (l *Local) Command(req Request, at int, _ *os.File) (*exec.Cmd, string) {
	local, domain := req.Recipient[:at], req.Recipient[at+1:]
	if local == "" {
		// The trash address "@host": accepted and thrown away.
		return nil, "K"
	}
	a, err := l.Users.Lookup(local)
	if err != nil {
		var le *LookupError
		if errors.As(err, &le) {
			return nil, le.Report
		}
		return nil, "ZTemporary failure in qmail-lspawn.\n"
	}
	cmd := exec.Command(filepath.Join(l.Home, "bin", "qmail-local"), "--",
		a.User, a.Home, local, a.Dash, a.Ext, domain, req.Sender, l.DefaultDeliver)
	cmd.Args[0] = "qmail-local"
	cmd.Dir = l.Home
	if l.AsRoot {
		// The ids become 32 bits: one that does not fit would be
		// cut, and 4294967296 would turn into root behind the check.
		// qmail-lspawn's setuid fails on such an id.
		uid, gid := uint32(a.UID), uint32(a.GID)
		if int(uid) != a.UID || int(gid) != a.GID {
			return nil, "ZInternal qmail-lspawn bug.\n"
		}
		if uid == 0 {
			return nil, "ZNot allowed to perform deliveries as root.\n"
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
		}
	} else if os.Getuid() == 0 {
		return nil, "ZNot allowed to perform deliveries as root.\n"
	}
	return cmd, ""
}

// Report maps qmail-local's exit status to a report (qmail-lspawn.c).
func (*Local) Report(c Child) string {
	if c.Crashed {
		return "Zqmail-local crashed.\n"
	}
	switch c.ExitCode {
	case -100:
		return "DUnable to run qmail-local.\n"
	case -111:
		return "ZUnable to run qmail-local.\n"
	}
	if fixed := localExitReports[c.ExitCode]; fixed != "" {
		return fixed
	}
	letter := "D"
	switch c.ExitCode {
	case 0:
		letter = "K"
	case 111, 71, 74, 75:
		letter = "Z"
	}
	// qmail-lspawn copies the output only up to its first NUL: the
	// output includes whatever programs run from a .qmail file print,
	// and a NUL would end the report early and let the rest pose as a
	// report for another delivery.
	return letter + string(cString(c.Output))
}

// localExitReports are the exit codes reserved for qmail-lspawn's own
// failures (qlx.h).
var localExitReports = map[int]string{
	112: "ZInternal qmail-lspawn bug.\n",
	113: "ZNot allowed to perform deliveries as root.\n",
	115: "ZNFS failure in qmail-local.\n",
	116: "ZUnable to find alias user!\n",
	117: "ZTrouble reading users/cdb in qmail-lspawn.\n",
	118: "ZTemporary failure in qmail-lspawn.\n",
	119: "ZOut of memory in qmail-lspawn.\n",
	120: "ZUnable to run qmail-local.\n",
	121: "ZUnable to run qmail-getpw.\n",
	126: "DUnable to run qmail-local.\n",
}

// Users adapts users.Chain (users/cdb, then qmail-getpw's rules, then
// the alias account) to Lookup.
type Users struct {
	Chain *users.Chain
}

// Lookup implements Lookup.
func (u Users) Lookup(local string) (Assignment, error) {
	e, err := u.Chain.Resolve(local)
	if err != nil {
		report := localExitReports[users.ExitCode(err)]
		if report == "" {
			report = "ZTemporary failure in qmail-lspawn.\n"
		}
		return Assignment{}, &LookupError{Report: report, Err: err}
	}
	return Assignment{User: e.User, UID: e.UID, GID: e.GID, Home: e.Home, Dash: e.Dash, Ext: e.Ext}, nil
}
