// Package control reads qmail's control files (qmail-control(5)) with the
// exact syntax rules of netqmail's control.c, and finds the qmail home.
//
// Files.Line, Int and List are control.c's readers. Table describes every
// control file of netqmail and of the Debian patch set: its kind, its
// default (a literal, or the contents of control/me) and the programs
// reading it. Files.String, Number and Strings read a file by its Table
// entry and apply its default, so programs need not repeat qmail's
// defaults:
//
//	f, err := control.Open(control.Home())
//	host, _, err := f.String("bouncehost")    // me, else "bouncehost"
//	n, err := f.Number("concurrencyremote")   // 20 when missing
//	hosts, ok, err := f.Strings("rcpthosts")  // ok false: missing (open relay)
//
// NewMRH is qmail-newmrh; the cdb format lives in control/cdb.
package control

import (
	"os"
	"path/filepath"
)

// DefaultHome is qmail's conf-qmail: where every program lives and works.
const DefaultHome = "/var/qmail"

// Home returns the qmail home directory: $QMAILHOME when set, else
// /var/qmail. A program running setuid or setgid ignores $QMAILHOME, so
// that a caller cannot point qmail-queue (setuid qmailq) at a queue of
// its own choosing.
func Home() string {
	if IsSetugid() {
		return DefaultHome
	}
	if h := os.Getenv("QMAILHOME"); h != "" {
		if abs, err := filepath.Abs(h); err == nil {
			return abs
		}
		return h
	}
	return DefaultHome
}

// IsSetugid reports whether the process runs with an effective uid or gid
// different from its real one (a setuid or setgid executable).
func IsSetugid() bool {
	return os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid()
}
