// Package sendlog checks a qmail-send log against qmail-log(5): every line
// must have one of the documented forms, and deliveries and messages must
// pair up the way qmailanalog's matchup pairs them. Tests of the queue
// manager share it, so that the grammar lives in one place.
package sendlog

import (
	"fmt"
	"regexp"
	"strings"
)

// Line is the grammar of one qmail-send log line (qmail-log(5)).
var Line = regexp.MustCompile(`^(status: local \d+/\d+ remote \d+/\d+( exitasap)?|status: exiting|new msg \d+|` +
	`info msg \d+: bytes \d+ from <[!-~]*> qp \d+ uid \d+|starting delivery \d+: msg \d+ to (local|remote) [!-~]+|` +
	`delivery \d+: (success|failure|deferral): [!-~]*|delivery \d+: report mangled, will defer|bounce msg \d+ qp \d+|` +
	`triple bounce: discarding bounce/\d+|end msg \d+|(warning|alert): .*)$`)

var (
	startRE = regexp.MustCompile(`^starting delivery (\d+): msg (\d+) `)
	doneRE  = regexp.MustCompile(`^delivery (\d+): `)
	infoRE  = regexp.MustCompile(`^info msg (\d+): `)
)

// Options relax the checks for logs that do not cover a whole run.
type Options struct {
	// Truncated is set for the log of a queue manager that was killed:
	// deliveries still running at the end need no result line.
	Truncated bool
	// Resumed is set for the log of a queue manager that found messages
	// already in the queue: "info msg" and "end msg" of a message whose
	// "new msg" an earlier run logged are allowed.
	Resumed bool
}

// Check returns every way lines break qmail-log(5), as readable
// problems; none means the log is well formed. Each "starting delivery
// N" has exactly one "delivery N:" after it, a delivery number is never
// reused, every line parses and no line is an alert; "info msg N" and
// "end msg N" follow a "new msg N" of the same run, and a message ends
// once before its id (an inode number) is new again.
func Check(lines []string, opt Options) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	running := map[string]bool{}
	used := map[string]bool{}
	fresh := map[string]bool{}
	ended := map[string]bool{}
	for _, l := range lines {
		if !Line.MatchString(l) {
			bad("log line does not parse: %q", l)
		}
		if strings.HasPrefix(l, "alert:") {
			bad("alert in log: %q", l)
		}
		if m := startRE.FindStringSubmatch(l); m != nil {
			if used[m[1]] {
				bad("delivery %s started twice", m[1])
			}
			used[m[1]], running[m[1]] = true, true
		} else if m := doneRE.FindStringSubmatch(l); m != nil {
			if !running[m[1]] {
				bad("delivery %s finished but was not running", m[1])
			}
			delete(running, m[1])
		} else if id, ok := strings.CutPrefix(l, "new msg "); ok {
			// Ids are inode numbers: one comes back only after its
			// message has ended.
			if fresh[id] && !ended[id] {
				bad("new msg %s again before it ended", id)
			}
			fresh[id], ended[id] = true, false
		} else if m := infoRE.FindStringSubmatch(l); m != nil {
			if !fresh[m[1]] && !opt.Resumed {
				bad("info msg %s without new msg", m[1])
			}
		} else if id, ok := strings.CutPrefix(l, "end msg "); ok {
			if !fresh[id] && !opt.Resumed {
				bad("end msg %s without new msg", id)
			}
			if ended[id] {
				bad("end msg %s twice", id)
			}
			ended[id] = true
		}
	}
	if !opt.Truncated {
		for id := range running {
			bad("starting delivery %s has no delivery line", id)
		}
	}
	return problems
}
