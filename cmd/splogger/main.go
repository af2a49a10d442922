// Command splogger copies its input lines to syslog (splogger(8)):
//
//	splogger [tag [facility]]
//
// It is qmail-start's logger when syslog is wanted instead of multilog.
package main

import (
	"fmt"
	"log/syslog"
	"os"
	"time"

	"github.com/goqmail/goqmail/admin"
)

func main() {
	tag, facility := admin.SploggerArgs(os.Args[1:])
	// Like syslog(3), which splogger calls without checking: a syslog
	// that is not there (yet) loses messages but never stops the reader,
	// or qmail-send would block on its log. The connection is retried
	// for every message until it works.
	var w *syslog.Writer
	warned := false
	send := func(priority syslog.Priority, msg string) error {
		if w == nil {
			var err error
			if w, err = syslog.New(facility|syslog.LOG_INFO, tag); err != nil {
				if !warned {
					fmt.Fprintf(os.Stderr, "splogger: warning: cannot reach syslog, messages are lost: %v\n", err)
					warned = true
				}
				return nil
			}
		}
		switch priority {
		case syslog.LOG_ALERT:
			w.Alert(msg)
		case syslog.LOG_WARNING:
			w.Warning(msg)
		default:
			w.Info(msg)
		}
		return nil
	}
	if err := admin.Splogger(os.Stdin, send, time.Now); err != nil {
		fmt.Fprintf(os.Stderr, "splogger: fatal: %v\n", err)
		os.Exit(111)
	}
}
