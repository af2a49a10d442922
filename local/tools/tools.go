// Package tools holds the programs users put in .qmail files and the
// small mail utilities that come with qmail: forward, condredirect,
// bouncesaying, except, preline, predate, maildirmake, maildir2mbox,
// datemail, mailsubj and qreceipt, with their qmail interfaces, messages
// and exit codes. Each takes its arguments (without the program name)
// and an IO describing its process, and returns the exit code.
package tools

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/goqmail/goqmail/local"
	"github.com/goqmail/goqmail/queue"
)

// IO is what a tool uses of its process: descriptors, environment and
// the qmail home where qmail-queue and qmail-inject live.
type IO struct {
	Stdin     *os.File
	Stdout    *os.File
	Stderr    *os.File
	Env       []string
	QmailHome string
}

// ProcessIO is the IO of the running process.
func ProcessIO(qmailHome string) IO {
	return IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Env: os.Environ(), QmailHome: qmailHome}
}

// Getenv returns the value of name in the tool's environment.
func (p IO) Getenv(name string) (string, bool) {
	for i := len(p.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(p.Env[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// die prints msg on stderr (qmail's strerr_die) and returns code.
func (p IO) die(code int, msg ...string) int {
	fmt.Fprintln(p.Stderr, strings.Join(msg, ""))
	return code
}

// command prepares argv as a child sharing our descriptors, so that a
// child reading the message leaves fd 0's offset where a seek can find
// it. The program is looked up in $PATH as execvp does.
func (p IO) command(argv []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = p.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.Stdin, p.Stdout, p.Stderr
	return cmd
}

// childResult is how a child ended.
type childResult struct {
	code    int  // exit code
	crashed bool // killed by a signal
}

// runChild runs argv and waits. A program that cannot be started counts
// as having exited 111 when the reason is temporary and 100 otherwise,
// which is what qmail's forked child reports after a failed execvp.
func (p IO) runChild(argv []string) (childResult, error) {
	cmd := p.command(argv)
	if err := cmd.Start(); err != nil {
		if local.IsTemp(startError(err)) {
			return childResult{code: 111}, nil
		}
		return childResult{code: 100}, nil
	}
	return wait(cmd)
}

// wait waits for a started child and tells how it ended.
func wait(cmd *exec.Cmd) (childResult, error) {
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return childResult{}, err
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return childResult{crashed: true}, nil
	}
	return childResult{code: cmd.ProcessState.ExitCode()}, nil
}

// queueCopy queues the message from r, with prefix (a Delivered-To line)
// in front, for recipients with sender as envelope sender. It returns
// qmail-queue's pid for the "qp" report, or a qmail error: 100 for a
// permanent refusal, 111 otherwise, with qmail's text.
func queueCopy(home, prefix string, r io.Reader, sender string, recipients []string) (qp int, code int, text string) {
	qq, err := queue.Open(home)
	if err != nil {
		var qerr *queue.Error
		if errors.As(err, &qerr) {
			return 0, 111, qerr.Text
		}
		return 0, 111, "unable to fork: " + local.ErrText(err)
	}
	qp = qq.Pid()
	qq.WriteString(prefix)
	if _, err := io.Copy(qq, r); err != nil {
		qq.Fail(err)
		qq.Close(sender, recipients)
		return 0, 111, "unable to read message: " + local.ErrText(err)
	}
	if err := qq.Close(sender, recipients); err != nil {
		var qerr *queue.Error
		if errors.As(err, &qerr) && qerr.Permanent {
			return 0, 100, qerr.Text
		}
		return 0, 111, err.Error()
	}
	return qp, 0, ""
}

// startError turns Go's "not found in $PATH" into the ENOENT execvp
// reports, so that messages and temporary/permanent decisions match
// qmail's.
func startError(err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return syscall.ENOENT
	}
	return err
}
