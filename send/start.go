package send

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ids are the accounts qmail-start gives its children when it runs as
// root (qmail-start(8)): the logger runs as qmaill, qmail-send as qmails,
// qmail-rspawn as qmailr, qmail-clean as qmailq, all in group qmail
// (the logger in nofiles); qmail-lspawn stays root.
type ids struct {
	qmaill, qmails, qmailr, qmailq int
	qmail, nofiles                 int
}

func lookupIDs() (*ids, error) {
	uid := func(name string) (int, error) {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(u.Uid)
	}
	gid := func(name string) (int, error) {
		g, err := user.LookupGroup(name)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(g.Gid)
	}
	var x ids
	var err error
	for _, f := range []struct {
		p    *int
		name string
		get  func(string) (int, error)
	}{
		{&x.qmaill, "qmaill", uid}, {&x.qmails, "qmails", uid}, {&x.qmailr, "qmailr", uid},
		{&x.qmailq, "qmailq", uid}, {&x.qmail, "qmail", gid}, {&x.nofiles, "nofiles", gid},
	} {
		if *f.p, err = f.get(f.name); err != nil {
			return nil, fmt.Errorf("looking up %s: %w", f.name, err)
		}
	}
	return &x, nil
}

func credential(uid, gid int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
}

// Start is qmail-start: it starts qmail-lspawn (with defaultDelivery),
// qmail-rspawn, qmail-clean and, when logger is not empty, the logger
// program (looked up in $PATH, reading qmail-send's log on its fd 0), and
// then becomes qmail-send with the descriptors qmail uses: 0 log, 1/2
// lspawn, 3/4 rspawn, 5/6 clean. Without root every process keeps the
// caller's ids. Start returns only on failure.
func Start(home, defaultDelivery string, logger []string) error {
	var x *ids
	if os.Getuid() == 0 {
		var err error
		if x, err = lookupIDs(); err != nil {
			return err
		}
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	unix.Umask(0o077)
	bin := func(name string) string { return filepath.Join(home, "bin", name) }

	logFD := os.Stdout
	if len(logger) > 0 {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd := exec.Command(logger[0], logger[1:]...)
		if p, err := exec.LookPath(logger[0]); err == nil {
			cmd.Path = p
		}
		cmd.Stdin = r
		cmd.Stdout = os.Stdout
		if x != nil {
			cmd.SysProcAttr = credential(x.qmaill, x.nofiles)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting logger: %w", err)
		}
		r.Close()
		logFD = w
	}
	var toChild, fromChild [3]*os.File
	children := []struct {
		name string
		args []string
		uid  int
	}{
		{"qmail-lspawn", []string{defaultDelivery}, -1},
		{"qmail-rspawn", nil, 1},
		{"qmail-clean", nil, 2},
	}
	for i, ch := range children {
		inR, inW, err := os.Pipe()
		if err != nil {
			return err
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd := exec.Command(bin(ch.name), ch.args...)
		cmd.Args[0] = ch.name
		cmd.Stdin, cmd.Stdout = inR, outW
		cmd.Env = os.Environ()
		if x != nil {
			switch i {
			case 1:
				cmd.SysProcAttr = credential(x.qmailr, x.qmail)
			case 2:
				cmd.SysProcAttr = credential(x.qmailq, x.qmail)
			default:
				cmd.SysProcAttr = credential(0, x.qmail)
			}
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", ch.name, err)
		}
		inR.Close()
		outW.Close()
		toChild[i], fromChild[i] = inW, outR
	}
	fds := []*os.File{logFD, toChild[0], fromChild[0], toChild[1], fromChild[1], toChild[2], fromChild[2]}
	// Move every descriptor out of the way first, so that placing one
	// on 0..6 cannot overwrite another still to be placed.
	high := make([]int, len(fds))
	for i, f := range fds {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 10)
		if err != nil {
			return err
		}
		high[i] = fd
	}
	for i, fd := range high {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return err
		}
	}
	if x != nil {
		// syscall's versions change the ids of every thread, which
		// matters in a Go process until the exec.
		if err := syscall.Setgroups([]int{}); err != nil {
			return err
		}
		if err := syscall.Setgid(x.qmail); err != nil {
			return err
		}
		if err := syscall.Setuid(x.qmails); err != nil {
			return err
		}
	}
	return unix.Exec(bin("qmail-send"), []string{"qmail-send"}, os.Environ())
}
