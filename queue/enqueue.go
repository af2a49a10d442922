package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Exit codes of qmail-queue (qmail-queue(8)) that Enqueue produces.
const (
	ExitAddrTooLong = 11 // an envelope address of MaxAddr bytes or more
	ExitTimeout     = 52 // the 24-hour self-destruct fired
	ExitWrite       = 53 // write error or disk full
	ExitRead        = 54 // unable to read the message or the envelope
	ExitHome        = 61 // trouble with the qmail home
	ExitQueueDir    = 62 // trouble with the queue directory
	ExitPid         = 63 // trouble with queue/pid
	ExitMess        = 64 // trouble with queue/mess
	ExitIntd        = 65 // trouble with queue/intd
	ExitTodo        = 66 // trouble with queue/todo
	ExitBug         = 81 // internal bug
	ExitEnvelope    = 91 // envelope format error
)

// Lifetime is qmail-queue's self-destruct delay (DEATH): it must stay
// below StaleAge so that the cleanup never removes files of a live run.
const Lifetime = 24 * time.Hour

// EnqueueError is a failure of Enqueue: the qmail-queue exit code that
// reports it, and what went wrong.
type EnqueueError struct {
	Code int
	Op   string // what was being done, e.g. "link intd/12 to todo/12"
	Err  error
}

func (e *EnqueueError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("qmail-queue: %s (exit %d)", e.Op, e.Code)
	}
	return fmt.Sprintf("qmail-queue: %s: %v (exit %d)", e.Op, e.Err, e.Code)
}

func (e *EnqueueError) Unwrap() error { return e.Err }

// ExitCode is the exit code a qmail-queue failing with err must use: the
// code an *EnqueueError carries, 81 (internal bug) for anything else.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var qe *EnqueueError
	if errors.As(err, &qe) {
		return qe.Code
	}
	return ExitBug
}

func fail(code int, op string, err error) error {
	return &EnqueueError{Code: code, Op: op, Err: err}
}

// Accounts whose use of qmail-queue the Received line names (qmail's
// auto_uida, auto_uidd, auto_uids).
const (
	AliasAccount  = "alias"  // deliveries of ~alias: "invoked by alias"
	QmaildAccount = "qmaild" // qmail-smtpd and friends: "invoked from network"
	QmailsAccount = "qmails" // qmail-send's bounces: "invoked for bounce"
)

// LookupAccount is the login name of uid in the password database, or ""
// when it has none. One lookup by uid is all the Received line needs.
func LookupAccount(uid int) string {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return ""
	}
	return u.Username
}

// Submission says who queues a message and when: it feeds the Received
// line, the pid/ file name and the u and p records of the envelope.
type Submission struct {
	UID     int    // real uid of the caller
	Account string // its login name (LookupAccount), "" if unknown
	PID     int    // qmail-queue's process id ("qp")
	Start   time.Time
	// Seq, when not 0, makes the pid/ file name unique among the
	// messages one long-running writer queues at the same time: the
	// name is pid/PID.TIME.SEQ with this SEQ, tried once. 0 is
	// qmail-queue's own rule (SEQ 1 to 9, one message per process).
	Seq uint64
}

// ReceivedLine is the line qmail-queue puts on top of every message, e.g.
// "Received: (qmail 4242 invoked by uid 1000); 3 Feb 2026 04:05:06 -0000\n".
func (s Submission) ReceivedLine() []byte {
	b := make([]byte, 0, 96)
	b = append(b, "Received: (qmail "...)
	b = strconv.AppendInt(b, int64(s.PID), 10)
	b = append(b, " invoked "...)
	switch s.Account {
	case AliasAccount:
		b = append(b, "by alias"...)
	case QmaildAccount:
		b = append(b, "from network"...)
	case QmailsAccount:
		b = append(b, "for bounce"...)
	default:
		b = append(b, "by uid "...)
		b = strconv.AppendInt(b, int64(s.UID), 10)
	}
	b = append(b, "); "...)
	return appendDate822(b, s.Start)
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// appendDate822 appends qmail's date822fmt: "D Mon YYYY HH:MM:SS -0000\n"
// in UTC, with no weekday and no leading zero on the day.
func appendDate822(b []byte, t time.Time) []byte {
	t = t.UTC()
	b = strconv.AppendInt(b, int64(t.Day()), 10)
	b = append(b, ' ')
	b = append(b, months[t.Month()-1]...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(t.Year()), 10)
	b = append(b, ' ')
	b = append2(b, t.Hour())
	b = append(b, ':')
	b = append2(b, t.Minute())
	b = append(b, ':')
	b = append2(b, t.Second())
	return append(b, " -0000\n"...)
}

func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

// MessPath is a message's file relative to the queue: mess/N%23/N. The
// same form serves info/, local/ and remote/.
func MessPath(dir string, id uint64) string {
	return SplitPath(dir, "mess", id)
}

// SplitPath is the file of message id in a split queue directory
// (mess, info, local, remote): sub/N%23/N under dir.
func SplitPath(dir, sub string, id uint64) string {
	b := make([]byte, 0, len(dir)+len(sub)+26)
	b = appendDir(b, dir)
	b = append(b, sub...)
	b = append(b, '/')
	b = strconv.AppendUint(b, id%Split, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, id, 10)
	return string(b)
}

// FlatPath is the file of message id in an unsplit queue directory
// (intd, todo, bounce): sub/N under dir.
func FlatPath(dir, sub string, id uint64) string {
	b := make([]byte, 0, len(dir)+len(sub)+22)
	b = appendDir(b, dir)
	b = append(b, sub...)
	b = append(b, '/')
	b = strconv.AppendUint(b, id, 10)
	return string(b)
}

func appendDir(b []byte, dir string) []byte {
	if dir == "" || dir == "." {
		return b
	}
	b = append(b, dir...)
	if dir[len(dir)-1] != '/' {
		b = append(b, '/')
	}
	return b
}

// copyBufSize is the unit in which the message is copied into the queue:
// large enough that a big message costs few system calls, small enough
// that memory stays bounded whatever the message size.
const copyBufSize = 128 << 10

// enqueueBuffers are the memory one Enqueue works in: the message's copy
// buffer and the envelope's reader and writer (4 KiB each). The writer
// keeps them from message to message.
type enqueueBuffers struct {
	copy []byte
	envR *bufio.Reader
	envW *bufio.Writer
}

func newEnqueueBuffers() *enqueueBuffers {
	return &enqueueBuffers{
		copy: make([]byte, copyBufSize),
		envR: bufio.NewReaderSize(nil, 4096),
		envW: bufio.NewWriterSize(nil, 4096),
	}
}

// enqueueRun is the state of one Enqueue: what it has made so far, so
// that a failure can take it back (qmail-queue's cleanup).
type enqueueRun struct {
	dir                         string
	bufs                        *enqueueBuffers
	id                          uint64
	messFD, intdFD              int // the pid/ file becomes the mess/ file
	pidFn, messFn, intdFn       string
	madePid, madeMess, madeIntd bool
}

// Enqueue puts one message into the queue at dir, in qmail-queue's
// crash-safe order (INTERNALS, section 3): a unique file in pid/ whose
// inode number N names the message, linked to mess/N%23/N; the Received
// line and the message from msg; the envelope from env (qmail-queue's
// fd 1 format, see CopyEnvelope) written to intd/N after the u and p
// records; both fsynced (at the same time, see syncMess); then the link
// todo/N, which commits. Last it
// pulls lock/trigger. Message and envelope are streamed in bounded memory.
//
// On failure the error is an *EnqueueError with qmail-queue's exit code,
// and the files this run made in mess/ and intd/ are truncated and
// removed, so nothing partial is left for qmail-send. (A pid/ file is
// left only when its own removal failed; qmail-clean reaps it later.)
func Enqueue(dir string, msg io.Reader, env io.Reader, sub Submission) (id uint64, err error) {
	id, err = enqueue(dir, msg, env, sub, newEnqueueBuffers())
	if err == nil {
		PullTrigger(dir)
	}
	return id, err
}

// enqueue is Enqueue in bufs (the writer reuses them from message to
// message) and without pulling the trigger, which is the caller's.
func enqueue(dir string, msg io.Reader, env io.Reader, sub Submission, bufs *enqueueBuffers) (id uint64, err error) {
	run := &enqueueRun{dir: dir, messFD: -1, intdFD: -1, bufs: bufs}
	defer func() {
		if p := recover(); p != nil {
			err = fail(ExitBug, "internal error", fmt.Errorf("panic: %v", p))
		}
		if err != nil {
			run.cleanup()
		}
		run.close()
	}()
	received := sub.ReceivedLine()
	if err := run.makeMess(sub); err != nil {
		return 0, err
	}
	if err := run.writeMessage(received, msg); err != nil {
		return 0, err
	}
	messSynced := run.syncMess()
	envErr := run.writeEnvelope(sub, env)
	// The wait comes first: the fsync uses the descriptor that a
	// failure's cleanup closes. A failed fsync of the message wins, as
	// when it came before the envelope.
	if err := messSynced(); err != nil {
		return 0, err
	}
	if envErr != nil {
		return 0, envErr
	}
	todoFn := FlatPath(dir, "todo", run.id)
	if err := unix.Link(run.intdFn, todoFn); err != nil {
		return 0, fail(ExitTodo, "link "+run.intdFn+" to "+todoFn, err)
	}
	return run.id, nil
}

// makeMess creates pid/PID.TIME.SEQ exclusively (SEQ 1 to 9, as qmail),
// takes its inode number as the message id and moves it to mess/.
func (r *enqueueRun) makeMess(sub Submission) error {
	prefix := appendDir(nil, r.dir)
	prefix = append(prefix, "pid/"...)
	prefix = strconv.AppendInt(prefix, int64(sub.PID), 10)
	prefix = append(prefix, '.')
	prefix = strconv.AppendInt(prefix, sub.Start.Unix(), 10)
	prefix = append(prefix, '.')
	first, last := uint64(1), uint64(9)
	if sub.Seq != 0 {
		first, last = sub.Seq, sub.Seq
	}
	var openErr error
	for seq := first; ; seq++ {
		r.pidFn = string(strconv.AppendUint(prefix, seq, 10))
		fd, err := openExcl(r.pidFn)
		if err == nil {
			r.messFD, r.madePid = fd, true
			break
		}
		openErr = err
		if seq == last {
			break
		}
	}
	if !r.madePid {
		return fail(ExitPid, "create "+r.pidFn, openErr)
	}
	var st unix.Stat_t
	if err := unix.Fstat(r.messFD, &st); err != nil {
		return fail(ExitPid, "fstat "+r.pidFn, err)
	}
	r.id = st.Ino
	r.messFn = MessPath(r.dir, r.id)
	r.intdFn = FlatPath(r.dir, "intd", r.id)
	if err := unix.Link(r.pidFn, r.messFn); err != nil {
		return fail(ExitMess, "link "+r.pidFn+" to "+r.messFn, err)
	}
	r.madeMess = true
	if err := unix.Unlink(r.pidFn); err != nil {
		return fail(ExitPid, "unlink "+r.pidFn, err)
	}
	r.madePid = false
	return nil
}

// writeMessage writes the Received line and the message to mess/N (the
// caller fsyncs it). Read and write failures are told apart, as
// qmail-queue does (54 and 53).
func (r *enqueueRun) writeMessage(received []byte, msg io.Reader) error {
	buf := r.bufs.copy
	n := copy(buf, received)
	for {
		m, rerr := msg.Read(buf[n:])
		n += m
		if rerr != nil && rerr != io.EOF {
			return fail(ExitRead, "read message", rerr)
		}
		if n == len(buf) || (rerr == io.EOF && n > 0) {
			if err := writeAll(r.messFD, buf[:n]); err != nil {
				return fail(ExitWrite, "write "+r.messFn, err)
			}
			n = 0
		}
		if rerr == io.EOF {
			break
		}
	}
	return nil
}

// syncMess fsyncs mess/N in the background and returns the wait for it.
// qmail-queue fsyncs the message before it reads the envelope; here the
// envelope is read, written to intd/N and fsynced meanwhile, so that a
// message costs the longer of the two fsyncs instead of their sum. Both
// are durable before todo/N is linked, the commit point, as in qmail:
// a crash in between leaves state S2 or S3, never a todo/N whose message
// is not on disk.
func (r *enqueueRun) syncMess() (wait func() error) {
	done := make(chan error, 1)
	go func() { done <- fsync(r.messFD) }()
	return func() error {
		if err := <-done; err != nil {
			return fail(ExitWrite, "fsync "+r.messFn, err)
		}
		return nil
	}
}

// writeEnvelope creates intd/N exclusively and writes u, p and the
// envelope records to it, then fsyncs it.
func (r *enqueueRun) writeEnvelope(sub Submission, env io.Reader) error {
	fd, err := openExcl(r.intdFn)
	if err != nil {
		return fail(ExitIntd, "create "+r.intdFn, err)
	}
	r.intdFD = fd
	r.madeIntd = true
	w := r.bufs.envW
	w.Reset(&fdWriter{fd: fd, name: r.intdFn})
	er := r.bufs.envR
	er.Reset(env)
	// Neither keeps this message's descriptor or reader.
	defer w.Reset(nil)
	defer er.Reset(nil)
	var head [48]byte
	h := append(head[:0], 'u')
	h = strconv.AppendInt(h, int64(sub.UID), 10)
	h = append(h, 0, 'p')
	h = strconv.AppendInt(h, int64(sub.PID), 10)
	h = append(h, 0)
	w.Write(h) // errors are sticky: Flush reports them
	if err := CopyEnvelope(w, er); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fail(ExitWrite, "write "+r.intdFn, err)
	}
	if err := fsync(fd); err != nil {
		return fail(ExitWrite, "fsync "+r.intdFn, err)
	}
	return nil
}

// cleanup is qmail-queue's cleanup(): truncate then remove intd/N and
// mess/N, stopping at the first removal that fails (the truncation at
// least gives the space back). Unlike qmail it also removes a pid/ file
// that never became a message, rather than leave it to qmail-clean.
func (r *enqueueRun) cleanup() {
	if r.madePid {
		unix.Unlink(r.pidFn)
	}
	if r.madeIntd {
		unix.Ftruncate(r.intdFD, 0)
		if unix.Unlink(r.intdFn) != nil {
			return
		}
	}
	if r.madeMess {
		unix.Ftruncate(r.messFD, 0)
		unix.Unlink(r.messFn)
	}
}

func (r *enqueueRun) close() {
	if r.messFD >= 0 {
		unix.Close(r.messFD)
	}
	if r.intdFD >= 0 {
		unix.Close(r.intdFD)
	}
}

// PullTrigger wakes qmail-send: one byte written without blocking to the
// lock/trigger FIFO. Nobody listening is not an error (qmail-send scans
// todo/ on its own every 25 minutes).
func PullTrigger(dir string) {
	fd, err := unix.Open(appendPath(dir, "lock/trigger"), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	unix.Write(fd, []byte{0})
	unix.Close(fd)
}

func appendPath(dir, name string) string {
	return string(append(appendDir(nil, dir), name...))
}

func openExcl(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func fsync(fd int) error {
	for {
		err := unix.Fsync(fd)
		if err != unix.EINTR {
			return err
		}
	}
}

// writeAll writes all of b to fd, retrying short writes.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

// fdWriter writes to a raw file descriptor; it keeps queue files off the
// runtime poller, which regular files do not use anyway.
type fdWriter struct {
	fd   int
	name string
}

func (w *fdWriter) Write(b []byte) (int, error) {
	if err := writeAll(w.fd, b); err != nil {
		return 0, err
	}
	return len(b), nil
}
