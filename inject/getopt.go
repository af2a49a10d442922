package inject

import (
	"fmt"
	"io"
	"strings"
)

// getopt parses options the way qmail's sgetopt does: options end at the
// first argument not starting with '-', at "-" (kept as an argument) or at
// "--" (dropped); an option taking an argument takes the rest of its word
// or the next word; problems are reported on stderr as
// "prog: illegal option -- x" or "prog: option requires an argument -- x".
type getopt struct {
	args     []string // argv including argv[0]
	opts     string
	ind, pos int
	arg      string // the argument of the last option
	prog     string // basename of argv[0]
	stderr   io.Writer
}

func newGetopt(args []string, opts string, stderr io.Writer) *getopt {
	prog := ""
	if len(args) > 0 {
		prog = args[0]
		if i := strings.LastIndexByte(prog, '/'); i >= 0 {
			prog = prog[i+1:]
		}
	}
	return &getopt{args: args, opts: opts, ind: 1, prog: prog, stderr: stderr}
}

// done is what next returns when the options are over.
const done = -1

// next returns the next option letter, '?' for an unknown option or a
// missing argument, or done.
func (g *getopt) next() int {
	g.arg = ""
	if g.ind >= len(g.args) {
		return done
	}
	if g.pos > 0 && g.pos >= len(g.args[g.ind]) {
		g.ind++
		g.pos = 0
		if g.ind >= len(g.args) {
			return done
		}
	}
	if g.pos == 0 {
		a := g.args[g.ind]
		if a == "" || a[0] != '-' {
			return done
		}
		if len(a) == 1 || a[1] == '-' {
			if len(a) > 1 {
				g.ind++
			}
			return done
		}
		g.pos = 1
	}
	c := g.args[g.ind][g.pos]
	g.pos++
	i := strings.IndexByte(g.opts, c)
	if c == ':' || i < 0 {
		fmt.Fprintf(g.stderr, "%s: illegal option -- %c\n", g.prog, c)
		return '?'
	}
	if i+1 < len(g.opts) && g.opts[i+1] == ':' {
		g.arg = g.args[g.ind][g.pos:]
		g.ind++
		g.pos = 0
		if g.arg == "" {
			if g.ind >= len(g.args) {
				fmt.Fprintf(g.stderr, "%s: option requires an argument -- %c\n", g.prog, c)
				return '?'
			}
			g.arg = g.args[g.ind]
			g.ind++
		}
	}
	return int(c)
}

// rest is the arguments after the options.
func (g *getopt) rest() []string {
	if g.ind > len(g.args) {
		return nil
	}
	return g.args[g.ind:]
}

// skipWord drops what is left of the current word (sendmail's -E and -J
// take an optional argument in the same word).
func (g *getopt) skipWord() {
	if g.pos > 0 && g.ind < len(g.args) {
		g.pos = len(g.args[g.ind])
	}
}
