package admin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goqmail/goqmail/queue"
)

// InitOptions say what home InitHome creates.
type InitOptions struct {
	Home string // the qmail home, e.g. /var/qmail or $QMAILHOME
	Me   string // this host's name: control/me, locals and rcpthosts
	// Programs is a directory of built goqmail programs to install into
	// bin/ (symbolic links when unprivileged, copies with qmail's owners
	// and modes when privileged). Empty installs none.
	Programs string
	// Ids, when set, are qmail's users and groups: the home gets qmail's
	// owners (hier.c). Nil creates everything owned by the caller.
	Ids *Ids
}

// Directories of the home besides the queue, with hier.c's modes.
var homeDirs = []struct {
	name string
	mode os.FileMode
}{
	{"bin", 0o755},
	{"control", 0o755},
	{"users", 0o755},
	{"doc", 0o755},
	{"alias", 0o755 | os.ModeSetgid},
}

// binModes are the modes hier.c gives programs that are not plain 0755.
// qmail-queue is setuid qmailq so that any user can queue mail into a
// queue only qmailq can write.
var binModes = map[string]os.FileMode{
	"qmail-queue":  0o711 | os.ModeSetuid,
	"qmail-start":  0o700,
	"qmail-lspawn": 0o700,
	"qmail-newu":   0o700,
	"qmail-newmrh": 0o700,
	"qmail-send":   0o711,
	"qmail-rspawn": 0o711,
	"qmail-clean":  0o711,
	"qmail-getpw":  0o711,
	"qmail-local":  0o711,
	"qmail-remote": 0o711,
	"qmail-smtpd":  0o711,
	"qmail-pw2u":   0o711,
}

// InitHome creates a complete qmail home: bin, control (me, locals,
// rcpthosts, defaultdelivery), the queue with qmail's layout, users, alias
// and doc. Existing directories and control files are kept; an existing
// queue makes it fail before anything is created, so a running
// installation is never overwritten.
func InitHome(opt InitOptions) error {
	if opt.Home == "" || opt.Me == "" {
		return errors.New("init: home and host name are required")
	}
	if strings.ContainsAny(opt.Me, "\n\x00") {
		return fmt.Errorf("init: bad host name %q", opt.Me)
	}
	qdir := filepath.Join(opt.Home, "queue")
	if _, err := os.Lstat(qdir); err == nil {
		return fmt.Errorf("init: %s already exists: refusing to overwrite an existing queue", qdir)
	}
	if err := os.MkdirAll(opt.Home, 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	root, qmailGid := -1, -1
	if opt.Ids != nil {
		root, qmailGid = 0, opt.Ids.Qmail
	}
	for _, d := range homeDirs {
		p := filepath.Join(opt.Home, d.name)
		owner := root
		if d.name == "alias" && opt.Ids != nil {
			owner = opt.Ids.Alias
		}
		if err := ensureDir(p, d.mode, owner, qmailGid); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	var owners *queue.Owners
	if opt.Ids != nil {
		owners = opt.Ids.QueueOwners()
	}
	if err := queue.Create(qdir, owners); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	controls := []struct{ name, value string }{
		{"me", opt.Me},
		{"locals", opt.Me},
		{"rcpthosts", opt.Me},
		{"defaultdelivery", "./Maildir/"},
	}
	for _, c := range controls {
		p := filepath.Join(opt.Home, "control", c.name)
		if err := createFile(p, []byte(c.value+"\n"), 0o644); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	if opt.Programs != "" {
		if err := installPrograms(opt.Programs, filepath.Join(opt.Home, "bin"), opt.Ids); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	return nil
}

// ensureDir makes dir with mode, or leaves an existing one as it is.
// Owner and group -1 leave the caller's.
func ensureDir(dir string, mode os.FileMode, uid, gid int) error {
	err := os.Mkdir(dir, mode.Perm())
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if uid != -1 || gid != -1 {
		if err := os.Lchown(dir, uid, gid); err != nil {
			return err
		}
	}
	return os.Chmod(dir, mode) // the umask must not weaken hier.c's modes
}

// createFile writes a new file, keeping an existing one untouched.
func createFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// BinMode is the mode hier.c gives the program name in bin/: 0755 unless
// binModes says otherwise. qmail-queue's includes its setuid bit.
func BinMode(name string) os.FileMode {
	if m, ok := binModes[name]; ok {
		return m
	}
	return 0o755
}

// installPrograms puts every program of src into bin. Unprivileged homes
// get symbolic links (nothing to copy, and a rebuild is picked up);
// privileged ones get copies with qmail's owners and modes, since a
// setuid bit only works on a file its owner owns.
func installPrograms(src, bin string, ids *Ids) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	srcAbs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	for _, name := range names {
		from, to := filepath.Join(srcAbs, name), filepath.Join(bin, name)
		if from == to {
			continue
		}
		os.Remove(to)
		if ids == nil {
			if err := os.Symlink(from, to); err != nil {
				return err
			}
			continue
		}
		mode, owner := BinMode(name), 0
		if name == "qmail-queue" {
			owner = ids.Qmailq
		}
		if err := copyProgram(from, to, owner, ids.Qmail, mode); err != nil {
			return err
		}
	}
	return nil
}

func copyProgram(from, to string, uid, gid int, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// chown first: chown clears the setuid bit.
	if err := os.Chown(to, uid, gid); err != nil {
		return err
	}
	return os.Chmod(to, mode)
}
