package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/goqmail/goqmail/internal/fsutil"
)

// MaxLine bounds what one control file line may cost in memory. qmail has
// no limit; a control file is written by root, but a bound keeps a
// corrupted file from exhausting memory.
const MaxLine = 1 << 20

// Files reads the control files of one qmail home, the way control.c does:
// "me" is read once, at Open, and serves as the fallback of the files that
// default to it.
type Files struct {
	dir  string // the control directory
	me   string
	meOK bool
}

// Open prepares to read the control files under home/control and reads
// control/me. A missing "me" is not an error: files that fall back to it
// then take their literal defaults.
func Open(home string) (*Files, error) {
	f := &Files{dir: filepath.Join(home, "control")}
	me, ok, err := f.Line("me")
	if err != nil {
		return nil, err
	}
	f.me, f.meOK = me, ok
	return f, nil
}

// Dir is the control directory.
func (f *Files) Dir() string { return f.dir }

// Path is the path of the named control file.
func (f *Files) Path(name string) string { return filepath.Join(f.dir, name) }

// Me returns the contents of control/me and whether the file exists.
func (f *Files) Me() (string, bool) { return f.me, f.meOK }

// Line reads the first line of a single-value control file
// (control_readline): the trailing newline, spaces and tabs are removed.
// ok is false if the file does not exist; any other failure is an error.
// An existing empty file gives "" with ok true.
func (f *Files) Line(name string) (value string, ok bool, err error) {
	file, err := fsutil.Open(f.Path(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("control/%s: %w", name, err)
	}
	defer file.Close()
	r := bufio.NewReader(file)
	line, err := readLine(r)
	if err != nil {
		return "", false, fmt.Errorf("control/%s: %w", name, err)
	}
	return stripTrailing(line), true, nil
}

// LineDefault reads a single-value file with its fallbacks (control_rldef):
// the file's first line if it exists, else control/me when useMe is set
// and me exists, else def.
func (f *Files) LineDefault(name string, useMe bool, def string) (string, error) {
	v, ok, err := f.Line(name)
	if err != nil || ok {
		return v, err
	}
	if useMe && f.meOK {
		return f.me, nil
	}
	return def, nil
}

// Int reads a numeric control file (control_readint): the leading decimal
// digits of the first line. A missing file, or a first line that does not
// start with a digit, gives def, as in qmail.
func (f *Files) Int(name string, def int) (int, error) {
	v, ok, err := f.Line(name)
	if err != nil || !ok {
		return def, err
	}
	n, ok := ScanUlong(v)
	if !ok {
		return def, nil
	}
	return n, nil
}

// List reads a list control file (control_readfile): every line with
// trailing spaces and tabs removed, skipping empty lines and lines that
// start with '#'. A missing file gives an empty list, or [me] when useMe is
// set and control/me exists.
func (f *Files) List(name string) ([]string, bool, error) {
	file, err := fsutil.Open(f.Path(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("control/%s: %w", name, err)
	}
	defer file.Close()
	lines, err := ParseList(file)
	if err != nil {
		return nil, false, fmt.Errorf("control/%s: %w", name, err)
	}
	return lines, true, nil
}

// ListDefault is List with qmail's "flagme" fallback: a missing file
// gives [me] when control/me exists.
func (f *Files) ListDefault(name string) ([]string, error) {
	lines, ok, err := f.List(name)
	if err != nil || ok {
		return lines, err
	}
	if f.meOK {
		return []string{f.me}, nil
	}
	return nil, nil
}

// ParseList applies control_readfile's rules to a whole file: trailing
// spaces and tabs are removed, empty lines and lines starting with '#'
// are skipped. A line starting with NUL is skipped and a NUL inside a
// line splits it, since qmail stores the lines NUL-terminated.
func ParseList(r io.Reader) ([]string, error) {
	br := bufio.NewReader(r)
	var lines []string
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if line == "" {
			// readLine returns "" only at end of file: an empty line
			// inside the file still carries its "\n".
			return lines, nil
		}
		line = stripTrailing(line)
		if line == "" || line[0] == '#' || line[0] == 0 {
			continue
		}
		// qmail keeps the lines as NUL-terminated strings in one
		// buffer, so a NUL inside a line splits it into two entries.
		lines = append(lines, strings.Split(line, "\x00")...)
	}
}

// readLine returns the next line including its "\n" (the last line may
// lack it), or "" at end of file.
func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		chunk, err := r.ReadSlice('\n')
		if b.Len()+len(chunk) > MaxLine {
			return "", fmt.Errorf("line longer than %d bytes", MaxLine)
		}
		b.Write(chunk)
		switch {
		case err == nil:
			return b.String(), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return b.String(), nil
		default:
			return "", err
		}
	}
}

// stripTrailing removes trailing "\n", spaces and tabs, as
// striptrailingwhitespace in control.c.
func stripTrailing(s string) string {
	return strings.TrimRight(s, "\n \t")
}

// ScanUlong parses leading decimal digits as qmail's scan_ulong does,
// reporting false when there are none. Values too large for an int
// saturate rather than wrap.
func ScanUlong(s string) (int, bool) {
	n, i := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := int(s[i] - '0')
		if n > (maxInt-d)/10 {
			n = maxInt
			continue
		}
		n = n*10 + d
	}
	return n, i > 0
}

const maxInt = int(^uint(0) >> 1)

// SplitKeyValue splits a "key:value" list line (smtproutes,
// virtualdomains, authsenders) at its first colon. ok is false when the
// line has no colon.
func SplitKeyValue(line string) (key, value string, ok bool) {
	return strings.Cut(line, ":")
}
