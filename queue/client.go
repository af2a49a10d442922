// Package queue is qmail's on-disk queue (INTERNALS, qmail-queue(8)):
// its layout, its file formats, qmail-queue's crash-safe write order, and
// the client side that every program queueing mail uses.
package queue

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/goqmail/goqmail/internal/timerslack"
)

// Error is a refusal from qmail-queue (or the $QMAILQUEUE program),
// carrying qmail's text for the exit code (qmail.c's qmail_close).
// Permanent errors are qmail's "D" texts, temporary ones its "Z" texts.
type Error struct {
	ExitCode  int // -1 when the queue program crashed or could not be waited for
	Permanent bool
	Text      string // e.g. "qq write error or disk full (#4.3.0)"
}

func (e *Error) Error() string { return e.Text }

// Letter is the report letter qmail uses for this error: 'D' or 'Z'.
func (e *Error) Letter() byte {
	if e.Permanent {
		return 'D'
	}
	return 'Z'
}

// ExitError maps a qmail-queue exit code to qmail's caller text (the table
// in qmail-queue(8) and qmail.c). It returns nil for 0.
func ExitError(code int) *Error {
	perm := func(t string) *Error { return &Error{ExitCode: code, Permanent: true, Text: t} }
	temp := func(t string) *Error { return &Error{ExitCode: code, Text: t} }
	switch code {
	case 0:
		return nil
	case 11, 115:
		return perm("envelope address too long for qq (#5.1.3)")
	case 31:
		return perm("mail server permanently rejected message (#5.3.0)")
	case 51:
		return temp("qq out of memory (#4.3.0)")
	case 52:
		return temp("qq timeout (#4.3.0)")
	case 53:
		return temp("qq write error or disk full (#4.3.0)")
	case 54:
		return temp("qq read error (#4.3.0)")
	case 55:
		return temp("qq unable to read configuration (#4.3.0)")
	case 56:
		return temp("qq trouble making network connection (#4.3.0)")
	case 61:
		return temp("qq trouble in home directory (#4.3.0)")
	case 62, 63, 64, 65, 66:
		return temp("qq trouble creating files in queue (#4.3.0)")
	case 71:
		return temp("mail server temporarily rejected message (#4.3.0)")
	case 72:
		return temp("connection to mail server timed out (#4.4.1)")
	case 73:
		return temp("connection to mail server rejected (#4.4.1)")
	case 74:
		return temp("communication with mail server failed (#4.4.2)")
	case 81, 91:
		return temp("qq internal bug (#4.3.0)")
	case 120:
		return temp("unable to exec qq (#4.3.0)")
	}
	if code >= 11 && code <= 40 {
		return perm("qq permanent problem (#5.3.0)")
	}
	return temp("qq temporary problem (#4.3.0)")
}

// Program is the queue program a caller runs: QMAILQUEUE from env when
// set and not empty (used as given, relative to the qmail home), else
// home/bin/qmail-queue. As in exec, the last QMAILQUEUE entry of env wins.
func Program(home string, env []string) string {
	p := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "QMAILQUEUE="); ok {
			p = v
		}
	}
	if p == "" {
		p = filepath.Join("bin", "qmail-queue")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(home, p)
	}
	return p
}

// Client hands one message to qmail-queue, as qmail.c does for every qmail
// program that queues mail: the message is written to the child's fd 0,
// then the envelope to its fd 1, then the exit code tells the outcome.
type Client struct {
	cmd      *exec.Cmd      // nil when a long-running Writer queues the message
	request  *writerRequest // the Writer's request, when it does
	pid      int
	reap     func() int // the outcome: the exit code, -1 after a crash
	msgPipe  *os.File
	msg      *bufio.Writer
	release  func(*bufio.Writer) // takes msg back once Close is done with it
	envPipe  *os.File
	writeErr error
	waited   bool
	code     int
}

// Open starts the queue program (see Program) in the qmail home with
// this process's environment.
func Open(home string) (*Client, error) {
	return OpenEnv(home, os.Environ())
}

// OpenEnv starts the queue program in the qmail home with exactly the
// environment env, which also chooses the program (its QMAILQUEUE). A
// server handling many clients in one process passes each client's own
// environment, as tcpserver would have given a process per client.
func OpenEnv(home string, env []string) (*Client, error) {
	msgR, msgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	envR, envW, err := os.Pipe()
	if err != nil {
		msgR.Close()
		msgW.Close()
		return nil, err
	}
	cmd := exec.Command(Program(home, env))
	// A nil env must mean an empty environment, not exec's "inherit".
	cmd.Env = append([]string{}, env...)
	cmd.Dir = home
	cmd.Stdin = msgR
	cmd.Stdout = envR
	cmd.Stderr = os.Stderr
	err = timerslack.Start(cmd)
	msgR.Close()
	envR.Close()
	if err != nil {
		msgW.Close()
		envW.Close()
		return nil, &Error{ExitCode: 120, Text: "unable to exec qq (#4.3.0)"}
	}
	c := &Client{cmd: cmd, pid: cmd.Process.Pid, msgPipe: msgW, msg: bufio.NewWriterSize(msgW, 64<<10), envPipe: envW}
	c.reap = c.waitProcess
	return c, nil
}

// Pid is the queue program's process id: qmail's "qp" in "250 ok ... qp N".
func (c *Client) Pid() int { return c.pid }

// Write adds message bytes. A write failure (the queue program went away)
// is remembered and reported by Close, as qmail_fail does.
func (c *Client) Write(p []byte) (int, error) {
	if c.writeErr != nil || c.msg == nil {
		return len(p), nil
	}
	if _, err := c.msg.Write(p); err != nil {
		c.writeErr = err
	}
	return len(p), nil
}

// WriteString adds message bytes.
func (c *Client) WriteString(s string) (int, error) {
	if c.writeErr != nil || c.msg == nil {
		return len(s), nil
	}
	if _, err := c.msg.WriteString(s); err != nil {
		c.writeErr = err
	}
	return len(s), nil
}

// Fail marks the submission as failed (qmail_fail): Close then aborts the
// queue program and reports an error, so nothing is queued.
func (c *Client) Fail(err error) {
	if c.writeErr == nil {
		c.writeErr = err
	}
}

// Close ends the message, sends the envelope (sender and recipients) and
// waits for the queue program. It returns nil only when the message was
// queued; otherwise an *Error with qmail's text.
func (c *Client) Close(sender string, recipients []string) error {
	if c.writeErr == nil && c.msg != nil {
		if err := c.msg.Flush(); err != nil {
			c.writeErr = err
		}
	}
	if r := c.request; r != nil {
		envelope := EncodeEnvelope(sender, recipients)
		if c.writeErr == nil {
			if inline, err := r.sendInline(envelope); inline {
				c.releaseMsg()
				return c.outcome(err)
			}
		}
		// The pipes, then as with a qmail-queue: a failed message
		// still sends its truncated envelope, for the writer's exit
		// code.
		if err := r.sendPipes(); err != nil && c.writeErr == nil {
			c.writeErr = err
		}
		r.releaseHeld()
		c.msgPipe, c.envPipe = r.msg, r.env
	}
	if c.msgPipe != nil {
		c.msgPipe.Close()
	}
	c.releaseMsg()
	if c.writeErr != nil {
		// qmail closes the envelope pipe without the final NUL, so the
		// queue program sees a truncated envelope and queues nothing.
		// Its own exit code still wins (qmail_close): a queue program
		// that died of a full disk made the writes fail, not the caller.
		if c.envPipe != nil {
			c.envPipe.Close()
		}
		code := c.wait()
		if code < 0 {
			return &Error{ExitCode: -1, Text: "qq crashed (#4.3.0)"}
		}
		if qerr := ExitError(code); qerr != nil {
			return qerr
		}
		return &Error{ExitCode: 54, Text: "qq read error (#4.3.0)"}
	}
	_, envErr := io.WriteString(c.envPipe, EncodeEnvelope(sender, recipients))
	c.envPipe.Close()
	return c.outcome(envErr)
}

// releaseMsg gives the message buffer back once Close is done with it.
func (c *Client) releaseMsg() {
	if c.release != nil {
		c.release(c.msg)
		c.msg, c.release = nil, nil
	}
}

// outcome waits for the queue program and gives Close's result; envErr
// is a failure to hand it the envelope.
func (c *Client) outcome(envErr error) error {
	code := c.wait()
	if code < 0 {
		return &Error{ExitCode: -1, Text: "qq crashed (#4.3.0)"}
	}
	if qerr := ExitError(code); qerr != nil {
		return qerr
	}
	if envErr != nil {
		return &Error{ExitCode: 54, Text: "qq read error (#4.3.0)"}
	}
	return nil
}

// wait returns the queue program's exit code, or -1 after a crash.
func (c *Client) wait() int {
	if c.waited {
		return c.code
	}
	c.waited = true
	c.code = c.reap()
	return c.code
}

// waitProcess reaps the child and returns its exit code, or -1 after a
// crash.
func (c *Client) waitProcess() int {
	waitExited(c.cmd.Process.Pid)
	err := c.cmd.Wait()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	return -1
}

// waitExited returns once the child pid has ended, without reaping it,
// by waiting for its pidfd in the runtime's poller. cmd.Wait alone
// blocks in waitid holding a scheduler slot, and while a slot is held in
// a system call the runtime's monitor thread wakes every 20 µs: a
// twentieth of qmail-smtpd's and qmail-inject's CPU per message went to
// that while qmail-queue ran (docs/performance.md). Parked in the
// poller, the process sleeps. On any trouble (no pidfds before Linux
// 5.3) it returns at once and Wait blocks as before. The pid cannot be
// reused meanwhile: the child is not reaped yet.
func waitExited(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// The poller only reports changes: the child may have exited
	// before it watched, so each turn asks the kernel (WNOWAIT leaves
	// the child to be reaped by Wait).
	rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		return err != nil || info.Signo != 0
	})
}

// EncodeEnvelope is the envelope qmail-queue reads on fd 1: "F" sender NUL,
// "T" recipient NUL for each recipient, and a final NUL.
func EncodeEnvelope(sender string, recipients []string) string {
	n := len(sender) + 3
	for _, r := range recipients {
		n += len(r) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, 'F')
	b = append(b, sender...)
	b = append(b, 0)
	for _, r := range recipients {
		b = append(b, 'T')
		b = append(b, r...)
		b = append(b, 0)
	}
	b = append(b, 0)
	return string(b)
}

var _ io.Writer = (*Client)(nil)
