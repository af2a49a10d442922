package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Account is the uid and gid goqmail's processes run as: the caller's,
// or nobody's when the benchmark runs as root (qmail never delivers as
// root, and an unprivileged home must not be run by root).
type Account struct {
	Uid, Gid int
}

// RunAccount picks the account for goqmail's processes.
func RunAccount() (Account, error) {
	if os.Geteuid() != 0 {
		return Account{os.Getuid(), os.Getgid()}, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return Account{}, fmt.Errorf("looking up nobody: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Account{}, fmt.Errorf("nobody's uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return Account{}, fmt.Errorf("nobody's gid %q: %w", u.Gid, err)
	}
	return Account{uid, gid}, nil
}

// attr makes a process run as a (when we are root) in group g (when not
// nil), in its own process group so that it can be signalled with its
// children.
func (a Account) attr(g *Group) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 && a.Uid != 0 {
		attr.Credential = &syscall.Credential{Uid: uint32(a.Uid), Gid: uint32(a.Gid), Groups: []uint32{}}
	}
	if g != nil {
		g.Attr(attr)
	}
	return attr
}

// chownTree gives dir and everything under it to a.
func (a Account) chownTree(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, a.Uid, a.Gid)
	})
}

// cappedBuffer keeps the first max bytes written to it and discards the
// rest: a command's output is kept for an error message, not unbounded.
type cappedBuffer struct {
	buf []byte
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string { return string(c.buf) }

// runQuiet runs a setup command to completion, the start of its output
// kept for the error.
func runQuiet(ctx context.Context, cmd *exec.Cmd) error {
	out := &cappedBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(out.String()))
	}
	return ctx.Err()
}

// startLogged starts a long-running command with its output in logPath.
func startLogged(cmd *exec.Cmd, logPath string) error {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Args[0], err)
	}
	return nil
}

// stopProcess sends SIGTERM to cmd and waits for it, then kills it when
// it has not exited within grace.
func stopProcess(cmd *exec.Cmd, grace time.Duration) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// tcpserver and Postfix take a port number, not a socket; the small race
// with other programs is accepted.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitSMTP waits until addr greets with 220.
func waitSMTP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			code, _, rerr := ReadReply(bufio.NewReader(c))
			c.Write([]byte("QUIT\r\n"))
			c.Close()
			if rerr == nil && code == 220 {
				return nil
			}
			last = fmt.Errorf("greeting: code %d, %v", code, rerr)
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no SMTP server on %s: %w", addr, last)
}

// CountDir counts the entries of a directory (a Maildir's new/).
func CountDir(dir string) (int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(4096)
		n += len(names)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
