package local

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// patrn is qmail's conf-patrn: the mode bits that must not be set on the
// home directory or a .qmail file. qmail's default 002 refuses
// world-writable ones.
const patrn = 0o002

// maxDotQmail bounds how much of a .qmail file is read. qmail reads the
// whole file; a bound keeps a runaway file from exhausting memory, and
// 8 MiB is far beyond any real forward list.
const maxDotQmail = 8 << 20

// SafeExt is the extension as used in .qmail file names: lowercased, with
// every '.' replaced by ':' so that an address cannot name a file like
// ".qmail-../x".
func SafeExt(ext string) string {
	b := []byte(ext)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case c == '.':
			b[i] = ':'
		}
	}
	return string(b)
}

// Candidate is one .qmail file name to try, in qmail-local's order.
type Candidate struct {
	Name string
	// DefaultAt is where the part of ext matched by "default" begins
	// (DEFAULT = ext[DefaultAt:]), or -1 when the name does not end in
	// "default".
	DefaultAt int
}

// SearchOrder lists the .qmail files qmail-local tries for dash and ext:
// the exact .qmail<dash><safeext>, then .qmail<dash><prefix>default for
// every prefix of safeext that ends in '-', longest first, then the empty
// prefix. For dash "-" and ext "a-b": .qmail-a-b, .qmail-a-default,
// .qmail-default.
func SearchOrder(dash, ext string) []Candidate {
	safe := SafeExt(ext)
	exact := Candidate{Name: ".qmail" + dash + safe, DefaultAt: -1}
	if strings.HasSuffix(safe, "default") {
		exact.DefaultAt = len(safe) - len("default")
	}
	list := []Candidate{exact}
	for i := len(safe); i >= 0; i-- {
		if i == 0 || safe[i-1] == '-' {
			list = append(list, Candidate{Name: ".qmail" + dash + safe[:i] + "default", DefaultAt: i})
		}
	}
	return list
}

// DotQmail is the .qmail file chosen for a delivery.
type DotQmail struct {
	Name        string // file name relative to the home directory
	Contents    string
	ForwardOnly bool // the owner-execute bit is set
	Default     string
	HasDefault  bool // the name ends in "default": DEFAULT is exported
}

// Find opens the first .qmail candidate under dir that is a regular
// file. It returns nil when none exists. A file that cannot be opened for
// a reason other than its absence, or one that is world-writable, stops
// the delivery with a temporary failure, as in qmail.
func Find(dir, dash, ext string) (*DotQmail, error) {
	for _, c := range SearchOrder(dash, ext) {
		contents, mode, ok, err := readDotQmail(dir, c.Name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		d := &DotQmail{Name: c.Name, Contents: contents, ForwardOnly: mode&0o100 != 0}
		if c.DefaultAt >= 0 && c.DefaultAt <= len(ext) {
			d.Default, d.HasDefault = ext[c.DefaultAt:], true
		}
		return d, nil
	}
	return nil, nil
}

// readDotQmail reads one candidate. ok is false when the name does not
// exist or is not a regular file; errors are qmail's temporary failures.
func readDotQmail(dir, name string) (contents string, mode os.FileMode, ok bool, err error) {
	// O_NONBLOCK, as qmail's open_read: a FIFO named like a .qmail file
	// must not hang the delivery (it is then skipped as not regular).
	f, err := os.OpenFile(inDir(dir, name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if IsTemp(err) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			return "", 0, false, tempf("Unable to open %s: %s. (#4.3.0)", name, ErrText(err))
		}
		return "", 0, false, nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, false, tempf("Unable to open %s: %s. (#4.3.0)", name, ErrText(err))
	}
	if !st.Mode().IsRegular() {
		return "", 0, false, nil
	}
	if st.Mode().Perm()&patrn != 0 {
		return "", 0, false, temp("Uh-oh: .qmail file is writable. (#4.7.0)")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxDotQmail+1))
	if err != nil {
		return "", 0, false, tempf("Unable to read %s: %s. (#4.3.0)", name, ErrText(err))
	}
	if len(b) > maxDotQmail {
		return "", 0, false, tempf("Unable to read %s: file too big. (#4.3.0)", name)
	}
	return string(b), st.Mode().Perm(), true, nil
}

// ownerFileExists reports whether .qmail<dash><safeext><suffix> exists
// (qmeox): any kind of file counts. Only temporary errors are failures.
func ownerFileExists(dir, name string) (bool, error) {
	_, err := os.Stat(inDir(dir, name))
	if err == nil {
		return true, nil
	}
	if IsTemp(err) {
		return false, tempf("Unable to open %s: %s. (#4.3.0)", name, ErrText(err))
	}
	return false, nil
}

// inDir is the path that names name from directory dir, as the kernel
// would resolve name with dir as the working directory: an absolute name
// stays as it is, and a relative one is joined to dir without cleaning,
// so that a ".." goes up from where a symbolic link led, not from the
// link's own directory.
func inDir(dir, name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	return strings.TrimSuffix(dir, "/") + "/" + name
}

// Failure is a delivery failure with qmail-local's exit code (100 hard,
// 111 soft) and report text.
type Failure struct {
	Code int
	Text string
}

func (f *Failure) Error() string { return f.Text }

func temp(text string) *Failure { return &Failure{Code: 111, Text: text} }
func hard(text string) *Failure { return &Failure{Code: 100, Text: text} }

func tempf(format string, args ...any) *Failure {
	return &Failure{Code: 111, Text: fmt.Sprintf(format, args...)}
}
