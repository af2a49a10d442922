package users

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/ascii"
	"github.com/goqmail/goqmail/internal/getopt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/goqmail/goqmail/control"
)

// Home strategies of qmail-pw2u: what an account's home directory must
// be for the account to get mail.
const (
	HomeIgnore = 0 // -H: don't look at it
	HomeStop   = 1 // -h: must exist (else fail); skipped unless owned by the user
	HomeSkip   = 2 // -o, the default: skipped unless it exists, owned by the user
)

// PW2UOptions are qmail-pw2u's options.
type PW2UOptions struct {
	DashColon  string // "-:" (default) or "-/:" (-/)
	Home       int    // HomeSkip (default), HomeStop or HomeIgnore
	AllowUpper bool   // -u: keep user names with uppercase letters
	Break      string // extension delimiter: "-" (default), -c char, "" for -C
	// HomeOwner stats a home directory; nil means the system's stat.
	HomeOwner func(dir string) (uid int, err error)
}

// ErrUsage reports options qmail-pw2u does not know (exit 100).
var ErrUsage = errors.New("usage: qmail-pw2u [-/ohHuUC] [-c char]")

// ParsePW2UArgs reads qmail-pw2u's options as getopt("/ohHuUc:C") does:
// bundled flags, -c's argument attached or following, "--" or the first
// non-option ending the options; later options override earlier ones.
func ParsePW2UArgs(args []string) (PW2UOptions, error) {
	opts := PW2UOptions{DashColon: "-:", Home: HomeSkip, Break: string(Break)}
	g := getopt.New("qmail-pw2u", args, "/ohHuUc:C", nil)
	for c := g.Next(); c != getopt.Done; c = g.Next() {
		switch c {
		case '/':
			opts.DashColon = "-/:"
		case 'o':
			opts.Home = HomeSkip
		case 'h':
			opts.Home = HomeStop
		case 'H':
			opts.Home = HomeIgnore
		case 'u':
			opts.AllowUpper = true
		case 'U':
			opts.AllowUpper = false
		case 'C':
			opts.Break = ""
		case 'c':
			// qmail keeps the first character; an empty argument
			// disables extensions like -C.
			opts.Break = g.Arg()[:min(1, len(g.Arg()))]
		default:
			return opts, ErrUsage
		}
	}
	return opts, nil
}

// account is a passwd entry qmail-pw2u accepted; uugh is the assignment
// tail ":user:uid:gid:home:" it writes.
type account struct{ user, uugh string }

// PW2U is qmail-pw2u: it reads passwd lines from passwd and writes the
// users/assign they imply to out, applying home/users/include, exclude,
// mailnames, subusers and append as qmail-pw2u(8) describes. For every
// accepted account (uid not 0, no uppercase unless AllowUpper, listed in
// include if that exists, not in exclude, home as the strategy wants) it
// writes "=name" and "+name-" assignments for the user name or its
// mailnames; the account "alias" becomes the catch-all "+" line and must
// exist. Errors carry qmail-pw2u's messages.
func PW2U(home string, passwd io.Reader, out io.Writer, opts PW2UOptions) error {
	if opts.HomeOwner == nil {
		opts.HomeOwner = SystemAccounts{}.HomeOwner
	}
	usersDir := filepath.Join(home, "users")
	includeLines, okInclude, err := readUsersList(usersDir, "include")
	if err != nil {
		return err
	}
	excludeLines, _, err := readUsersList(usersDir, "exclude")
	if err != nil {
		return err
	}
	include, exclude := set(includeLines), set(excludeLines)
	mailnameLines, _, err := readUsersList(usersDir, "mailnames")
	if err != nil {
		return err
	}
	mailnames := colonMap(mailnameLines)

	w := bufio.NewWriter(out)
	accounts := map[string]account{} // by lowercased user name; the last wins, as in constmap
	sawAlias := false
	err = eachLine(passwd, func(line []byte) error {
		a, ok, err := pw2uAccount(line, include, okInclude, exclude, opts)
		if err != nil || !ok {
			return err
		}
		accounts[ascii.Lower(a.user)] = a
		if a.user == AliasUser {
			fmt.Fprintf(w, "+%s%s:\n", a.uugh, opts.DashColon)
			sawAlias = true
		}
		names, ok := mailnames[ascii.Lower(a.user)]
		if !ok {
			names = a.user
		}
		for _, name := range strings.Split(names, ":") {
			if name == "" {
				continue
			}
			fmt.Fprintf(w, "=%s%s::\n", name, a.uugh)
			if opts.Break != "" {
				fmt.Fprintf(w, "+%s%s%s%s:\n", name, opts.Break, a.uugh, opts.DashColon)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !sawAlias {
		return fmt.Errorf("unable to find %s user", AliasUser)
	}

	if err := eachFileLine(filepath.Join(usersDir, "subusers"), func(line []byte) error {
		return writeSubuser(w, line, accounts, opts)
	}); err != nil {
		return err
	}
	if err := eachFileLine(filepath.Join(usersDir, "append"), func(line []byte) error {
		_, err := w.Write(line)
		return err
	}); err != nil {
		return err
	}
	w.WriteString(".\n")
	if err := w.Flush(); err != nil {
		return fmt.Errorf("unable to write output: %w", err)
	}
	return nil
}

// pw2uAccount applies qmail-pw2u's filters to one passwd line
// (name:password:uid:gid:gecos:home:shell, the shell field required).
func pw2uAccount(line []byte, include map[string]bool, okInclude bool, exclude map[string]bool, opts PW2UOptions) (account, bool, error) {
	if bytes.IndexByte(line, 0) >= 0 {
		return account{}, false, nil
	}
	f := strings.SplitN(string(line), ":", 7)
	if len(f) < 7 {
		return account{}, false, nil
	}
	user, uidStr, gidStr, home := f[0], f[2], f[3], f[5]
	uid, _ := control.ScanUlong(uidStr)
	if uid == 0 {
		return account{}, false, nil
	}
	if !opts.AllowUpper && strings.ContainsAny(user, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		return account{}, false, nil
	}
	key := ascii.Lower(user)
	if okInclude && !include[key] {
		return account{}, false, nil
	}
	if exclude[key] {
		return account{}, false, nil
	}
	if opts.Home != HomeIgnore {
		owner, err := opts.HomeOwner(home)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) || opts.Home == HomeStop {
				return account{}, false, fmt.Errorf("unable to stat %s: %w", home, err)
			}
			return account{}, false, nil
		}
		if owner != uid {
			return account{}, false, nil
		}
	}
	return account{user, ":" + user + ":" + uidStr + ":" + gidStr + ":" + home + ":"}, true, nil
}

// writeSubuser turns a users/subusers line "sub:user:pre:" into its
// assignments.
func writeSubuser(w *bufio.Writer, line []byte, accounts map[string]account, opts PW2UOptions) error {
	f := strings.SplitN(string(line), ":", 4)
	if len(f) < 4 {
		return nil
	}
	sub, user, pre := f[0], f[1], f[2]
	a, ok := accounts[ascii.Lower(user)]
	if !ok {
		return fmt.Errorf("unable to find %s user for subuser", user)
	}
	fmt.Fprintf(w, "=%s%s%s%s:\n", sub, a.uugh, opts.DashColon, pre)
	if opts.Break != "" {
		fmt.Fprintf(w, "+%s%s%s%s%s-:\n", sub, opts.Break, a.uugh, opts.DashColon, pre)
	}
	return nil
}

// readUsersList reads users/name with the control-file list rules.
func readUsersList(dir, name string) ([]string, bool, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("unable to read controls: %w", err)
	}
	defer f.Close()
	lines, err := control.ParseList(f)
	if err != nil {
		return nil, false, fmt.Errorf("unable to read controls: users/%s: %w", name, err)
	}
	return lines, true, nil
}

// set builds a case-insensitive membership map, as constmap.
func set(lines []string) map[string]bool {
	m := make(map[string]bool, len(lines))
	for _, l := range lines {
		m[ascii.Lower(l)] = true
	}
	return m
}

// colonMap maps each line's part before its first colon (lowercased) to
// the rest; lines without a colon are ignored and the last line for a key
// wins, as in constmap with flagcolon.
func colonMap(lines []string) map[string]string {
	m := make(map[string]string, len(lines))
	for _, l := range lines {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[ascii.Lower(k)] = v
		}
	}
	return m
}

// eachLine calls fn with every line of r, each with its "\n" (the last may
// lack it). Lines are bounded by maxAssignLine.
func eachLine(r io.Reader, fn func([]byte) error) error {
	br := bufio.NewReaderSize(r, 4096)
	for {
		var line []byte
		for {
			chunk, err := br.ReadSlice('\n')
			line = append(line, chunk...)
			if len(line) > maxAssignLine {
				return errors.New("unable to read input: line too long")
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("unable to read input: %w", err)
			}
			if err != nil && len(line) == 0 {
				return nil
			}
			break
		}
		if err := fn(line); err != nil {
			return err
		}
		if line[len(line)-1] != '\n' {
			return nil
		}
	}
}

// eachFileLine is eachLine over a users/ file that may be missing.
func eachFileLine(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unable to read controls: %w", err)
	}
	defer f.Close()
	return eachLine(f, fn)
}
