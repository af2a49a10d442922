package queue

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goqmail/goqmail/internal/unixmsg"
)

// The long-running queue writer (docs/queue.md, "The queue writer").
//
// A server that queues many messages (the standalone qmail-smtpd) starts
// one "qmail-queue --writer" instead of one qmail-queue per message. The
// two are connected by a SOCK_SEQPACKET socketpair. Per message the
// server sends one request, an 8-byte request number and either
//   - as SCM_RIGHTS, the read ends of two pipes that are exactly
//     qmail-queue's fd 0 (the message) and fd 1 (the envelope), or
//   - for a message and envelope of at most inlineMax bytes together,
//     no descriptors but the message's length (4 bytes), the message and
//     the envelope, in the request itself: most mail is a few KiB, and
//     two pipes cost more system calls than the message's own writes.
// The writer runs Enqueue on them, concurrently with the other
// requests, and answers with the request number and qmail-queue's exit
// code (4 bytes). The caller's uid (the u record and the Received line)
// is the one the kernel attaches to each request (SO_PASSCRED): the
// socketpair's SO_PEERCRED would be the uid of its creator, root before
// the server drops its privileges.

// WriterArg is the argument that selects qmail-queue's writer mode; the
// socket is its fd 3.
const WriterArg = "--writer"

const (
	requestSize  = 8
	inlineHeader = requestSize + 4
	// inlineMax bounds an inline request's message and envelope; a
	// datagram this size fits the socket's default send buffer.
	inlineMax = 64 << 10
	replySize = 12
	// writerFirstSeq keeps the writer's pid/ names apart from those of
	// a one-message qmail-queue (SEQ 1 to 9) that had the same pid.
	writerFirstSeq = 10
)

// ErrWriterGone is returned by Writer.Open once the writer has exited.
var ErrWriterGone = errors.New("queue writer has exited")

// ServeWriter is qmail-queue's writer mode: it queues the messages of
// the requests that arrive on conn into the queue at dir (the current
// directory of a qmail-queue, "."), each in its own goroutine, until
// the other end closes conn; then it waits for the messages under way
// and returns. conn must have SO_PASSCRED set from its creation
// (StartWriter does it); ServeWriter sets it too. Each message is given Lifetime, as a qmail-queue process
// is: after it, its pipes are closed and it fails with a read error.
func ServeWriter(dir string, conn *net.UnixConn, pid int) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("writer socket: %w", err)
	}
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		optErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return fmt.Errorf("writer socket: %w", err)
	}
	if optErr != nil {
		return fmt.Errorf("writer socket: SO_PASSCRED: %w", optErr)
	}
	var (
		running sync.WaitGroup
		seq     atomic.Uint64
		// Buffers go from message to message: fresh ones each
		// time were most of the writer's memory traffic.
		bufs     = sync.Pool{New: func() any { return newEnqueueBuffers() }}
		accounts sync.Map // uid → login name, looked up once
		replyMu  sync.Mutex
	)
	seq.Store(writerFirstSeq - 1)
	trigger := &triggerPuller{dir: dir, gap: TriggerGap}
	defer trigger.flush() // after the messages under way
	defer running.Wait()
	reply := func(id uint64, code int) {
		var b [replySize]byte
		binary.LittleEndian.PutUint64(b[:8], id)
		binary.LittleEndian.PutUint32(b[8:], uint32(code))
		replyMu.Lock()
		conn.Write(b[:]) // the server gone: nobody is waiting any more
		replyMu.Unlock()
	}
	// An inline request stays in its buffer until it is queued.
	requests := sync.Pool{New: func() any { b := make([]byte, inlineHeader+inlineMax+1); return &b }}
	oob := make([]byte, unix.CmsgSpace(2*4)+unix.CmsgSpace(unix.SizeofUcred))
	for {
		req := requests.Get().(*[]byte)
		buf := *req
		n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil || (n == 0 && oobn == 0) {
			if err == nil || errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("writer socket: read: %w", err)
		}
		fds, cred := unixmsg.Parse(oob[:oobn])
		msg, env, ok := parseRequest(buf[:n], len(fds))
		if !ok || cred == nil || flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
			// Not a request of ours: nothing to answer it with.
			unixmsg.CloseAll(fds)
			if n >= requestSize {
				reply(binary.LittleEndian.Uint64(buf[:8]), ExitBug)
			}
			requests.Put(req)
			continue
		}
		id := binary.LittleEndian.Uint64(buf[:8])
		uid := int(cred.Uid)
		account, ok := accounts.Load(uid)
		if !ok {
			account, _ = accounts.LoadOrStore(uid, LookupAccount(uid))
		}
		sub := Submission{UID: uid, Account: account.(string), PID: pid, Start: time.Now(), Seq: seq.Add(1)}
		running.Add(1)
		if len(fds) == 2 {
			requests.Put(req)
		}
		go func() {
			defer running.Done()
			b := bufs.Get().(*enqueueBuffers)
			defer bufs.Put(b)
			var code int
			if len(fds) == 2 {
				code = enqueueFDs(dir, fds[0], fds[1], sub, b)
			} else {
				_, err := enqueue(dir, bytes.NewReader(msg), bytes.NewReader(env), sub, b)
				requests.Put(req)
				code = ExitCode(err)
			}
			if code == 0 {
				trigger.pull()
			}
			reply(id, code)
		}()
	}
}

// parseRequest checks a request of n bytes with fds descriptors: the
// number and two pipes, or the number, the message's length, the message
// and the envelope (msg and env, parts of b).
func parseRequest(b []byte, fds int) (msg, env []byte, ok bool) {
	switch {
	case fds == 2 && len(b) == requestSize:
		return nil, nil, true
	case fds == 0 && len(b) >= inlineHeader && len(b) <= inlineHeader+inlineMax:
		msgLen := binary.LittleEndian.Uint32(b[requestSize:inlineHeader])
		if uint64(msgLen) > uint64(len(b)-inlineHeader) {
			return nil, nil, false
		}
		rest := b[inlineHeader:]
		return rest[:msgLen], rest[msgLen:], true
	}
	return nil, nil, false
}

// enqueueFDs queues the message read from msgFD with the envelope read
// from envFD in bufs, closes both and returns qmail-queue's exit
// code.
func enqueueFDs(dir string, msgFD, envFD int, sub Submission, bufs *enqueueBuffers) int {
	// Non-blocking, the pipes use the runtime poller: Close then ends a
	// read that waits, which is how Lifetime is enforced.
	unix.SetNonblock(msgFD, true)
	unix.SetNonblock(envFD, true)
	msg := os.NewFile(uintptr(msgFD), "message")
	env := os.NewFile(uintptr(envFD), "envelope")
	defer msg.Close()
	defer env.Close()
	expire := time.AfterFunc(Lifetime, func() {
		msg.Close()
		env.Close()
	})
	defer expire.Stop()
	_, err := enqueue(dir, msg, env, sub, bufs)
	return ExitCode(err)
}

// pipe makes a pipe for one message: the read end, a bare descriptor, goes
// to the writer; this process writes the other end with blocking writes.
// Neither is offered to the runtime's poller, which for a message of a
// few KiB only added system calls (four fcntl and two epoll_ctl a pipe).
func pipe() (r int, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, nil, fmt.Errorf("pipe: %w", err)
	}
	return p[0], os.NewFile(uintptr(p[1]), "queue writer pipe"), nil
}

// Writer is the server's end of a long-running queue writer: Open hands
// it one message. It is safe for concurrent use.
type Writer struct {
	conn *net.UnixConn
	pid  int
	cmd  *exec.Cmd
	log  io.Writer

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan int
	gone    bool
	exited  chan struct{}
	// bufs holds the message buffers of finished Clients, inline
	// their held messages.
	bufs, inline sync.Pool
}

// StartWriter starts "program --writer" (program is a qmail-queue) in
// the qmail home with the environment env, as the account cred when not
// nil. Its standard error goes to log, where its exit is also reported.
func StartWriter(home, program string, env []string, cred *syscall.Credential, log io.Writer) (*Writer, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("queue writer: socketpair: %w", err)
	}
	// The writer's end asks for credentials before any request is sent:
	// a request queued before the option is set would carry none.
	if err := unix.SetsockoptInt(pair[1], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(pair[0])
		unix.Close(pair[1])
		return nil, fmt.Errorf("queue writer: SO_PASSCRED: %w", err)
	}
	local := os.NewFile(uintptr(pair[0]), "queue writer")
	remote := os.NewFile(uintptr(pair[1]), "queue writer")
	defer remote.Close()
	fc, err := net.FileConn(local)
	local.Close()
	if err != nil {
		return nil, fmt.Errorf("queue writer: %w", err)
	}
	conn := fc.(*net.UnixConn)
	cmd := exec.Command(program, WriterArg)
	cmd.Env = append([]string{}, env...)
	cmd.Dir = home
	cmd.ExtraFiles = []*os.File{remote}
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("queue writer: %w", err)
	}
	w := &Writer{conn: conn, pid: cmd.Process.Pid, cmd: cmd, log: log,
		pending: make(map[uint64]chan int), exited: make(chan struct{})}
	go w.readReplies()
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(log, "queue writer %d exited (%v): each message now runs qmail-queue\n", w.pid, err)
		// Open refuses from now on; readReplies fails the messages
		// still waiting once the closed socket wakes it.
		w.mu.Lock()
		w.gone = true
		w.mu.Unlock()
		conn.Close()
		close(w.exited)
	}()
	return w, nil
}

// Pid is the writer's process id: the "qp" of the messages it queues.
func (w *Writer) Pid() int { return w.pid }

// Close ends the writer: it finishes the messages under way and exits.
func (w *Writer) Close() error {
	w.conn.CloseWrite()
	<-w.exited
	return nil
}

// readReplies hands each reply to the message waiting for it; when the
// writer goes away every message still waiting fails as a crashed
// qmail-queue would (-1: "qq crashed", never a 250).
func (w *Writer) readReplies() {
	b := make([]byte, replySize+1)
	for {
		n, err := w.conn.Read(b)
		if err != nil || n == 0 {
			break
		}
		if n != replySize {
			continue
		}
		id := binary.LittleEndian.Uint64(b[:8])
		code := int(int32(binary.LittleEndian.Uint32(b[8:])))
		w.mu.Lock()
		ch := w.pending[id]
		delete(w.pending, id)
		w.mu.Unlock()
		if ch != nil {
			ch <- code
		}
	}
	w.mu.Lock()
	w.gone = true
	for id, ch := range w.pending {
		ch <- -1
		delete(w.pending, id)
	}
	w.mu.Unlock()
}

// Open hands the writer one message: the returned Client is used as one
// that runs qmail-queue (Write, Fail, Close), and its Close reports the
// writer's exit code for this message. It fails with ErrWriterGone once
// the writer has exited; the caller then runs qmail-queue instead.
//
// The request goes out when the message and envelope are known to fit
// an inline request (at Close), or, as soon as the message outgrows it,
// with the two pipes, through which the rest is then streamed.
func (w *Writer) Open() (*Client, error) {
	ch := make(chan int, 1)
	w.mu.Lock()
	if w.gone {
		w.mu.Unlock()
		return nil, ErrWriterGone
	}
	w.next++
	id := w.next
	w.pending[id] = ch
	w.mu.Unlock()
	r := &writerRequest{w: w, id: id}
	if b, ok := w.inline.Get().(*[]byte); ok {
		r.held = (*b)[:0]
	} else {
		r.held = make([]byte, 0, 8<<10)
	}
	bw, _ := w.bufs.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(r, 64<<10)
	} else {
		bw.Reset(r)
	}
	c := &Client{pid: w.pid, msg: bw, request: r}
	c.reap = func() int { return <-ch }
	c.release = func(bw *bufio.Writer) {
		bw.Reset(nil)
		w.bufs.Put(bw)
	}
	return c, nil
}

// writerRequest is one message's request to the writer while its Client
// writes it: the message is held until it outgrows an inline request,
// then streamed through the pipes.
type writerRequest struct {
	w       *Writer
	id      uint64
	held    []byte   // the message so far, while no pipes are sent
	msg     *os.File // the pipes' write ends, once sent
	env     *os.File
	sent    bool  // the request went out (inline or with the pipes)
	sendErr error // it could not: the writer is gone
}

// Write holds message bytes, or streams them once the pipes are sent.
func (r *writerRequest) Write(p []byte) (int, error) {
	if !r.sent && len(r.held)+len(p) <= inlineMax {
		r.held = append(r.held, p...)
		return len(p), nil
	}
	if err := r.sendPipes(); err != nil {
		return 0, err
	}
	return r.msg.Write(p)
}

// sendPipes sends the request with the two pipes, unless it went out
// already, and writes the message held so far into the message pipe.
func (r *writerRequest) sendPipes() error {
	if r.sent {
		return r.sendErr
	}
	r.sent = true
	msgR, msgW, err := pipe()
	if err != nil {
		r.sendErr = err
		return err
	}
	envR, envW, err := pipe()
	if err != nil {
		unix.Close(msgR)
		msgW.Close()
		r.sendErr = err
		return err
	}
	var req [requestSize]byte
	binary.LittleEndian.PutUint64(req[:], r.id)
	_, _, err = r.w.conn.WriteMsgUnix(req[:], unix.UnixRights(msgR, envR), nil)
	unix.Close(msgR)
	unix.Close(envR)
	if err != nil {
		msgW.Close()
		envW.Close()
		r.fail(err)
		return r.sendErr
	}
	r.msg, r.env = msgW, envW
	_, err = r.msg.Write(r.held)
	r.releaseHeld()
	return err
}

// sendInline sends the message held and env as one inline request when
// they fit; false means they do not, and nothing was sent.
func (r *writerRequest) sendInline(env string) (bool, error) {
	if r.sent || len(r.held)+len(env) > inlineMax {
		return false, nil
	}
	r.sent = true
	req := make([]byte, inlineHeader, inlineHeader+len(r.held)+len(env))
	binary.LittleEndian.PutUint64(req, r.id)
	binary.LittleEndian.PutUint32(req[requestSize:], uint32(len(r.held)))
	req = append(append(req, r.held...), env...)
	if _, _, err := r.w.conn.WriteMsgUnix(req, nil, nil); err != nil {
		if errors.Is(err, unix.EMSGSIZE) {
			// A send buffer set smaller than the request: the
			// pipes take it instead.
			r.sent = false
			return false, nil
		}
		r.releaseHeld()
		r.fail(err)
		return true, r.sendErr
	}
	r.releaseHeld()
	return true, nil
}

// fail records that the request could not be sent: the writer is gone
// or the socket unusable. No answer will come for it, so its Close gets
// -1 (qq crashed) at once.
func (r *writerRequest) fail(err error) {
	r.sendErr = fmt.Errorf("%w: %v", ErrWriterGone, err)
	w := r.w
	w.mu.Lock()
	ch := w.pending[r.id]
	delete(w.pending, r.id)
	w.mu.Unlock()
	if ch != nil {
		ch <- -1
	}
}

func (r *writerRequest) releaseHeld() {
	if r.held != nil {
		b := r.held[:0]
		r.w.inline.Put(&b)
		r.held = nil
	}
}

// TriggerGap is the least time between two pulls of lock/trigger by the
// writer. qmail-send lists todo/ at most once per 10 ms however often it
// is woken; a pull per message woke it (and had the writer open the
// FIFO) for nothing most of the time under load.
const TriggerGap = 5 * time.Millisecond

// triggerPuller pulls lock/trigger for the writer's messages: at once
// when it was not pulled in the last gap, otherwise once at the end of
// the gap for every message committed meanwhile. Every commit is thus
// followed by a pull, which is all qmail-send needs to find the message
// (it lists todo/ after it reads the trigger), at most gap late.
type triggerPuller struct {
	dir string
	gap time.Duration

	mu      sync.Mutex
	last    time.Time   // of the last pull
	pending *time.Timer // the pull scheduled for the end of the gap
}

// pull wakes qmail-send for a message whose todo/N is linked.
func (t *triggerPuller) pull() {
	t.mu.Lock()
	if t.pending != nil {
		// The scheduled pull comes after this commit.
		t.mu.Unlock()
		return
	}
	now := time.Now()
	if wait := t.last.Add(t.gap).Sub(now); wait > 0 {
		t.pending = time.AfterFunc(wait, t.pullNow)
		t.mu.Unlock()
		return
	}
	t.last = now
	t.mu.Unlock()
	PullTrigger(t.dir)
}

// pullNow is the scheduled pull. pending is cleared first: a commit
// after that point schedules its own pull.
func (t *triggerPuller) pullNow() {
	t.mu.Lock()
	t.pending = nil
	t.last = time.Now()
	t.mu.Unlock()
	PullTrigger(t.dir)
}

// flush pulls at once when a pull is scheduled: the writer is ending and
// its timers with it.
func (t *triggerPuller) flush() {
	t.mu.Lock()
	pending := t.pending
	t.mu.Unlock()
	if pending != nil && pending.Stop() {
		t.pullNow()
	}
}
