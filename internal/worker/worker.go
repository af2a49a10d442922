// Package worker lets a spawner hand deliveries to long-running processes
// of a delivery program instead of starting the program once per
// delivery (docs/performance.md, "Delivery workers").
//
// A worker is the delivery program itself, started as "PROGRAM --worker"
// with the ids, directory and environment the program would have had for
// one delivery, and one end of a SOCK_SEQPACKET socketpair as its fd 3.
// It first sends Hello. Then it receives requests, each one datagram: a
// 4-byte tag chosen by the spawner, then the program's arguments after
// argv[0], each followed by a NUL, with the delivery's fd 0 (the message)
// as SCM_RIGHTS. It runs each delivery exactly as the program would with
// those arguments and that descriptor, collecting what the program would
// have written to its fd 1 and 2 (the report; programs the delivery runs
// write into a pipe of the worker's), closes the descriptor, and answers
// with one datagram: the request's tag, the exit code the program would
// have exited with, a byte of flags and the output, of which the first
// MaxOutput bytes are kept. A worker may run up to the number of
// deliveries at a time its program allows (the spawner's Pool is told
// the same number); answers come in the order deliveries end. When the
// spawner closes its end, the worker finishes the deliveries under way
// and exits.
//
// A worker dying without an answer is a crashed program, for every
// delivery it had. A spawner only starts workers of goqmail's own
// programs (Verifier): a wrapper script installed in the program's place
// (for example one that signs outgoing mail and then runs the real
// program) would be bypassed, so anything else runs once per delivery,
// as in qmail.
package worker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/goqmail/goqmail/internal/unixmsg"
)

// Arg is the argument that starts a program as a worker; the socket is
// its fd 3.
const Arg = "--worker"

// Hello is the worker's first message: it speaks this protocol.
const Hello = "goqmail-worker 3"

// maxRequest bounds one request's arguments. A spawner's arguments are a
// few paths and addresses of at most a few KiB each.
const maxRequest = 64 << 10

// maxArgs bounds the number of arguments in a request.
const maxArgs = 64

// MaxOutput is how much of a delivery's output its answer carries: one
// byte more than the largest report a spawner keeps (qmail-rspawn's 64
// KiB), so that a spawner still sees when output was cut.
const MaxOutput = 64<<10 + 1

const (
	tagSize      = 4
	answerHeader = tagSize + 2 // tag, exit code, flags; then the output
	// sendBuffer is the socket send buffer the answers need.
	sendBuffer = 2 * (answerHeader + MaxOutput)
)

// Flags of an answer.
const (
	// flagRetiring: the worker takes no more requests (a delivery
	// was abandoned in it); it exits once the spawner closes its end
	// and the deliveries under way are answered.
	flagRetiring = 1 << iota
	// flagNotTaken: the request was not run (the worker is
	// retiring); another worker may take it.
	flagNotTaken
)

// Request is one delivery handed to a worker.
type Request struct {
	Args  []string  // the program's arguments after argv[0]
	Stdin *os.File  // the program's fd 0
	Out   io.Writer // what it writes to its fd 1 and 2

	out      *output
	tag      uint32
	w        *server
	answered sync.Once
}

// output collects a delivery's output, the first MaxOutput bytes of it.
// The delivery and the programs it runs write to it from several
// goroutines.
type output struct {
	mu  sync.Mutex
	buf []byte
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if room := MaxOutput - len(o.buf); room > 0 {
		o.buf = append(o.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (o *output) bytes() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]byte(nil), o.buf...)
}

// Abandon answers the request with code, for a delivery that has to give
// up while it is stuck in a system call it cannot leave (qmail-local's
// alarm on a hung maildir write, where the program would have exited
// with code), with the output so far. The delivery's goroutine is left
// behind: the worker takes no more requests and exits once the
// deliveries still under way are answered.
func (r *Request) Abandon(code int) {
	r.w.retiring.Store(true)
	r.answer(code, flagRetiring)
}

// answer sends the request's one answer; later calls do nothing.
func (r *Request) answer(code int, flags byte) {
	r.answered.Do(func() {
		if flags&flagNotTaken == 0 && r.w.retiring.Load() {
			flags |= flagRetiring
		}
		var out []byte
		if r.out != nil {
			out = r.out.bytes()
		}
		r.w.send(r.tag, code, flags, out)
		r.w.pending.Done()
	})
}

// server is the worker's side of the socket.
type server struct {
	conn     *net.UnixConn
	writeMu  sync.Mutex
	writeErr error
	retiring atomic.Bool
	pending  sync.WaitGroup // requests not yet answered
}

func (w *server) send(tag uint32, code int, flags byte, out []byte) {
	b := make([]byte, answerHeader, answerHeader+len(out))
	binary.LittleEndian.PutUint32(b[:tagSize], tag)
	b[tagSize], b[tagSize+1] = byte(code), flags
	b = append(b, out...)
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	if _, err := w.conn.Write(b); err != nil && w.writeErr == nil {
		w.writeErr = err
	}
}

// Serve is the worker's side: it sends Hello on conn, then runs deliver
// for each request, up to limit of them at a time, each in its own
// goroutine, until the spawner closes conn; then it waits for the
// deliveries under way (not for abandoned ones) and returns. deliver
// returns the exit code; Serve closes the request's descriptors, then
// answers. A malformed request ends the worker with an error, after the
// deliveries under way.
func Serve(conn *net.UnixConn, limit int, deliver func(*Request) int) error {
	// An answer with all its output must fit the send buffer; the
	// default (net.core.wmem_default) usually does, a lowered one is
	// raised as far as net.core.wmem_max lets it.
	if raw, err := conn.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			if n, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && n < sendBuffer {
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, sendBuffer)
			}
		})
	}
	if _, err := conn.Write([]byte(Hello)); err != nil {
		return fmt.Errorf("worker: hello: %w", err)
	}
	w := &server{conn: conn}
	slots := make(chan struct{}, max(limit, 1))
	err := w.serve(slots, deliver)
	w.pending.Wait()
	if err == nil && w.writeErr != nil {
		err = fmt.Errorf("worker: answer: %w", w.writeErr)
	}
	return err
}

func (w *server) serve(slots chan struct{}, deliver func(*Request) int) error {
	buf := make([]byte, tagSize+maxRequest+1)
	oob := make([]byte, unix.CmsgSpace(2*4))
	for {
		n, oobn, flags, _, err := w.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("worker: read request: %w", err)
		}
		fds, _ := unixmsg.Parse(oob[:oobn])
		if n == 0 && len(fds) == 0 {
			return nil // the spawner closed its end
		}
		var args []string
		ok := n >= tagSize
		if ok {
			args, ok = decodeArgs(buf[tagSize:n])
		}
		if !ok || len(fds) != 1 || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			unixmsg.CloseAll(fds)
			return errors.New("worker: malformed request")
		}
		out := &output{}
		req := &Request{
			Args:  args,
			Stdin: os.NewFile(uintptr(fds[0]), "stdin"),
			Out:   out,
			out:   out,
			tag:   binary.LittleEndian.Uint32(buf[:tagSize]),
			w:     w,
		}
		w.pending.Add(1)
		if w.retiring.Load() {
			req.Stdin.Close()
			req.answer(0, flagNotTaken)
			continue
		}
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			code := deliver(req)
			req.Stdin.Close()
			req.answer(code, 0)
		}()
	}
}

// encodeArgs is the request's data: each argument followed by a NUL. An
// argument cannot contain a NUL (neither can an argv string).
func encodeArgs(args []string) ([]byte, error) {
	if len(args) > maxArgs {
		return nil, errors.New("too many arguments")
	}
	var b bytes.Buffer
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, errors.New("NUL in an argument")
		}
		b.WriteString(a)
		b.WriteByte(0)
	}
	if b.Len() > maxRequest {
		return nil, errors.New("arguments too long")
	}
	return b.Bytes(), nil
}

func decodeArgs(b []byte) ([]string, bool) {
	if len(b) > maxRequest || (len(b) > 0 && b[len(b)-1] != 0) {
		return nil, false
	}
	var args []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		args = append(args, string(b[:i]))
		b = b[i+1:]
		if len(args) > maxArgs {
			return nil, false
		}
	}
	return args, true
}

// Inherited is the worker's end of the socket, fd 3 as the spawner
// starts it. fd 3 itself is closed (the connection uses a close-on-exec
// copy): the programs a delivery runs must not inherit the socket, or
// one could answer for the worker.
func Inherited() (*net.UnixConn, error) {
	sock := os.NewFile(3, "worker")
	conn, err := net.FileConn(sock)
	sock.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: fd 3: %w", Arg, err)
	}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("%s: fd 3 is not a Unix socket", Arg)
	}
	return uc, nil
}
