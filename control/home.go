// Package control reads qmail's control files (qmail-control(5)) with the
// exact syntax rules of netqmail's control.c, and finds the qmail home.
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
