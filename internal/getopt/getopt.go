// Package getopt parses options the way qmail's sgetopt does, for the
// programs that keep qmail's command lines: options end at the first
// argument not starting with '-', at "-" (kept as an argument) or at
// "--" (dropped); letters may be grouped; an option taking an argument
// (a letter followed by ':' in the option string) takes the rest of its
// word or the next word.
package getopt

import (
	"fmt"
	"io"
	"strings"
)

// Done is what Next returns when the options are over.
const Done = -1

// Parser walks one command line.
type Parser struct {
	prog     string
	args     []string // the arguments, without argv[0]
	opts     string
	ind, pos int
	arg      string
	stderr   io.Writer
}

// New parses args (without argv[0]) against opts. Problems are reported
// on stderr, when it is not nil, as sgetopt does: "prog: illegal option
// -- x" or "prog: option requires an argument -- x", where prog is the
// base name of argv0.
func New(argv0 string, args []string, opts string, stderr io.Writer) *Parser {
	if i := strings.LastIndexByte(argv0, '/'); i >= 0 {
		argv0 = argv0[i+1:]
	}
	return &Parser{prog: argv0, args: args, opts: opts, stderr: stderr}
}

// Next returns the next option letter, '?' for an unknown option or a
// missing argument, or Done.
func (g *Parser) Next() int {
	g.arg = ""
	if g.ind >= len(g.args) {
		return Done
	}
	if g.pos > 0 && g.pos >= len(g.args[g.ind]) {
		g.ind++
		g.pos = 0
		if g.ind >= len(g.args) {
			return Done
		}
	}
	if g.pos == 0 {
		a := g.args[g.ind]
		if a == "" || a[0] != '-' {
			return Done
		}
		if len(a) == 1 || a[1] == '-' {
			if len(a) > 1 {
				g.ind++
			}
			return Done
		}
		g.pos = 1
	}
	c := g.args[g.ind][g.pos]
	g.pos++
	i := strings.IndexByte(g.opts, c)
	if c == ':' || i < 0 {
		g.complain("illegal option", c)
		return '?'
	}
	if i+1 < len(g.opts) && g.opts[i+1] == ':' {
		g.arg = g.args[g.ind][g.pos:]
		g.ind++
		g.pos = 0
		if g.arg == "" {
			if g.ind >= len(g.args) {
				g.complain("option requires an argument", c)
				return '?'
			}
			g.arg = g.args[g.ind]
			g.ind++
		}
	}
	return int(c)
}

func (g *Parser) complain(what string, c byte) {
	if g.stderr != nil {
		fmt.Fprintf(g.stderr, "%s: %s -- %c\n", g.prog, what, c)
	}
}

// Prog is the base name of argv0: the name messages use.
func (g *Parser) Prog() string { return g.prog }

// Arg is the argument of the option Next just returned.
func (g *Parser) Arg() string { return g.arg }

// Rest is the arguments after the options.
func (g *Parser) Rest() []string {
	if g.ind > len(g.args) {
		return nil
	}
	return g.args[g.ind:]
}

// SkipWord drops what is left of the current word (sendmail's -E and -J
// take an optional argument in the same word).
func (g *Parser) SkipWord() {
	if g.pos > 0 && g.ind < len(g.args) {
		g.pos = len(g.args[g.ind])
	}
}
