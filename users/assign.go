// Package users maps local parts to the accounts that receive their mail,
// as qmail-users(5), qmail-newu, qmail-getpw and qmail-lspawn do: it
// parses users/assign, builds users/cdb with exactly qmail-newu's keys and
// values (so netqmail's qmail-lspawn reads our cdb and we read theirs),
// looks local parts up in it with qmail-lspawn's rules, applies
// qmail-getpw's passwd rules, and chains the three.
package users

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxAssignLine bounds one users/assign line. qmail has no limit; the
// bound keeps a corrupt file from exhausting memory.
const maxAssignLine = 64 << 10

// Assignment is one line of users/assign.
//
//	=local:user:uid:gid:homedir:dash:ext:   simple: exactly local
//	+loc:user:uid:gid:homedir:dash:pre:     wildcard: every local part
//	                                        starting with loc
//
// The fields are kept as written: qmail-newu copies them into users/cdb
// without interpreting them.
type Assignment struct {
	Wildcard bool
	Local    string // the address (simple) or prefix (wildcard), as written
	User     string
	UID, GID string
	Home     string
	Dash     string
	Ext      string // ext for a simple assignment, pre for a wildcard
}

// FormatError reports a users/assign line qmail-newu would reject.
type FormatError struct {
	Line   int // 1-based; the line after the last one for a missing "."
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("bad format in users/assign line %d: %s", e.Line, e.Reason)
}

// ReadAssign parses users/assign with qmail-newu's rules, calling fn for
// each assignment in order. A line starting with "." ends the file; a
// file without it, a line with NUL, without a colon, starting with a
// colon or with fewer than six colons after the address is a
// *FormatError. A first character other than "+" means a simple
// assignment, as in qmail. Memory is bounded per line: the file is
// streamed.
func ReadAssign(r io.Reader, fn func(Assignment) error) error {
	br := bufio.NewReaderSize(r, 4096)
	for n := 1; ; n++ {
		line, complete, err := readLine(br)
		if err != nil {
			return fmt.Errorf("unable to read users/assign: %w", err)
		}
		if len(line) > 0 && line[0] == '.' {
			return nil
		}
		if !complete {
			if len(line) > maxAssignLine {
				return &FormatError{n, "line too long"}
			}
			return &FormatError{n, `missing final "." line`}
		}
		a, reason := parseAssignLine(line)
		if reason != "" {
			return &FormatError{n, reason}
		}
		if err := fn(a); err != nil {
			return err
		}
	}
}

// ParseAssign reads a whole users/assign into memory.
func ParseAssign(r io.Reader) ([]Assignment, error) {
	var all []Assignment
	err := ReadAssign(r, func(a Assignment) error {
		all = append(all, a)
		return nil
	})
	return all, err
}

// readLine returns one line without its "\n"; complete is false when the
// input ended without a newline or the line exceeds maxAssignLine.
func readLine(br *bufio.Reader) (line []byte, complete bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case err == nil && len(line) > maxAssignLine+1:
			return line, false, nil
		case err == nil:
			return line[:len(line)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line) > maxAssignLine {
				return line, false, nil
			}
		case errors.Is(err, io.EOF):
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

func parseAssignLine(line []byte) (Assignment, string) {
	if bytes.IndexByte(line, 0) >= 0 {
		return Assignment{}, "NUL in line"
	}
	colon := bytes.IndexByte(line, ':')
	switch {
	case colon < 0:
		return Assignment{}, "no colon"
	case colon == 0:
		return Assignment{}, "empty line or line starting with a colon"
	}
	fields := strings.SplitN(string(line[colon+1:]), ":", 7)
	if len(fields) < 7 {
		return Assignment{}, "fewer than 6 colons after the address"
	}
	return Assignment{
		Wildcard: line[0] == '+',
		Local:    string(line[1:colon]),
		User:     fields[0],
		UID:      fields[1],
		GID:      fields[2],
		Home:     fields[3],
		Dash:     fields[4],
		Ext:      fields[5],
	}, ""
}

// String renders the assignment as a users/assign line, without "\n".
func (a Assignment) String() string {
	kind := "="
	if a.Wildcard {
		kind = "+"
	}
	return kind + strings.Join([]string{a.Local, a.User, a.UID, a.GID, a.Home, a.Dash, a.Ext}, ":") + ":"
}
