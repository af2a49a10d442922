// Package local is qmail-local: one delivery to one local address, driven
// by the recipient's .qmail file (dot-qmail(5), qmail-local(8),
// qmail-command(8)), with qmail's environment, error texts and exit codes.
package local

import (
	"strings"
)

// Kind is the type of one .qmail line.
type Kind int

// The line types of dot-qmail(5), plus the two qmail-local handles
// silently (blank lines after the first and '+' lines).
const (
	Blank    Kind = iota // empty after trimming; an error only as the first line
	Comment              // "#..."
	Maildir              // "./dir/" or "/dir/": a path ending in '/'
	Mbox                 // "./file" or "/file"
	Program              // "|command": Arg is the command for /bin/sh -c
	Forward              // "&addr" or a bare address: Arg is the address
	ListOnly             // "+list": forward-only mode for the following lines
	Ignored              // any other "+..." line
)

// Line is one parsed .qmail instruction.
type Line struct {
	Kind Kind
	Arg  string // the path, command or address; for other kinds the raw line
}

// ParseDotQmail splits the contents of a .qmail file (or of the default
// delivery, which has the same syntax) into instructions, the way
// qmail-local reads them: lines end at '\n' (a missing final newline is
// supplied), trailing spaces and tabs are removed, and the first
// character decides the type. Every line is returned, blank ones too, so
// the caller can apply the first-line rule.
func ParseDotQmail(cmds string) []Line {
	if cmds == "" || cmds[len(cmds)-1] != '\n' {
		cmds += "\n"
	}
	cmds = cmds[:len(cmds)-1]
	raw := strings.Split(cmds, "\n")
	lines := make([]Line, 0, len(raw))
	for _, l := range raw {
		lines = append(lines, parseLine(strings.TrimRight(l, " \t")))
	}
	return lines
}

// parseLine classifies one trimmed line. qmail looks at the first and
// the last byte of the line but uses the text only up to a NUL (it hands
// C strings on), so a NUL inside a line cuts the path, command or address
// without changing the line's type.
func parseLine(l string) Line {
	if l == "" {
		return Line{Kind: Blank}
	}
	text := l
	if i := strings.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	switch l[0] {
	case 0:
		return Line{Kind: Blank}
	case '#':
		return Line{Kind: Comment, Arg: text}
	case '.', '/':
		if l[len(l)-1] == '/' {
			return Line{Kind: Maildir, Arg: text}
		}
		return Line{Kind: Mbox, Arg: text}
	case '|':
		return Line{Kind: Program, Arg: text[1:]}
	case '+':
		if text == "+list" {
			return Line{Kind: ListOnly, Arg: text}
		}
		return Line{Kind: Ignored, Arg: text}
	case '&':
		return Line{Kind: Forward, Arg: text[1:]}
	}
	return Line{Kind: Forward, Arg: text}
}
