// Package worker lets a spawner hand deliveries to long-running processes
// of a delivery program instead of starting the program once per
// delivery (docs/performance.md, "Delivery workers").
//
// A worker is the delivery program itself, started as "PROGRAM --worker"
// with the ids, directory and environment the program would have had for
// one delivery, and one end of a SOCK_SEQPACKET socketpair as its fd 3.
// It first sends Hello. Then, one delivery at a time, it receives a
// request: the program's arguments after argv[0], each followed by a
// NUL, with two descriptors as SCM_RIGHTS, the delivery's fd 0 (the
// message) and its fd 1 and 2 (where the report is written). It runs
// the delivery exactly as the program would with those arguments and
// descriptors, closes them, and answers with one byte: the exit code the
// program would have exited with. When the spawner closes its end, the
// worker exits.
//
// A worker dying without an answer is a crashed program. A spawner only
// starts workers of goqmail's own programs (Verifier): a wrapper script
// installed in the program's place (for example one that signs outgoing
// mail and then runs the real program) would be bypassed, so anything
// else runs once per delivery, as in qmail.
package worker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/goqmail/goqmail/internal/unixmsg"
)

// Arg is the argument that starts a program as a worker; the socket is
// its fd 3.
const Arg = "--worker"

// Hello is the worker's first message: it speaks this protocol.
const Hello = "goqmail-worker 1"

// maxRequest bounds one request. A spawner's arguments are a few paths
// and addresses of at most a few KiB each.
const maxRequest = 64 << 10

// maxArgs bounds the number of arguments in a request.
const maxArgs = 64

// Request is one delivery handed to a worker.
type Request struct {
	Args  []string // the program's arguments after argv[0]
	Stdin *os.File // the program's fd 0
	Out   *os.File // the program's fd 1 and fd 2

	conn     *net.UnixConn
	answered sync.Once
}

// Exit answers the request with code and ends the worker process at
// once. It is for a delivery that must give up from another goroutine
// while the delivery itself is stuck (qmail-local's alarm on a hung
// maildir write): the program would have exited with code there.
func (r *Request) Exit(code int) {
	r.answer(code)
	os.Exit(code)
}

func (r *Request) answer(code int) error {
	err := errors.New("request already answered")
	r.answered.Do(func() {
		_, err = r.conn.Write([]byte{byte(code)})
	})
	return err
}

// Serve is the worker's side: it sends Hello on conn, then runs deliver
// for each request until the spawner closes conn. deliver returns the
// exit code; Serve closes the request's descriptors, then answers.
func Serve(conn *net.UnixConn, deliver func(*Request) int) error {
	if _, err := conn.Write([]byte(Hello)); err != nil {
		return fmt.Errorf("worker: hello: %w", err)
	}
	buf := make([]byte, maxRequest+1)
	oob := make([]byte, unix.CmsgSpace(2*4))
	for {
		n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
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
		args, ok := decodeArgs(buf[:n])
		if !ok || len(fds) != 2 || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			unixmsg.CloseAll(fds)
			return errors.New("worker: malformed request")
		}
		req := &Request{
			Args:  args,
			Stdin: os.NewFile(uintptr(fds[0]), "stdin"),
			Out:   os.NewFile(uintptr(fds[1]), "output"),
			conn:  conn,
		}
		code := deliver(req)
		req.Stdin.Close()
		// The spawner reads the output until its end of file: our
		// copy must be closed before the answer.
		req.Out.Close()
		if err := req.answer(code); err != nil {
			return fmt.Errorf("worker: answer: %w", err)
		}
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
