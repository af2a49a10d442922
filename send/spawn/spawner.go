package spawn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/goqmail/goqmail/internal/fsutil"
	"github.com/goqmail/goqmail/internal/worker"
)

// Child is what a spawner knows about one finished delivery program.
type Child struct {
	Crashed  bool // killed by a signal
	ExitCode int
	Output   []byte // fd 1 and fd 2 of the program, possibly truncated
}

// Channel is the part that differs between qmail-lspawn and qmail-rspawn:
// how a delivery program is started and how its outcome becomes a report.
type Channel interface {
	// Command prepares the program for one delivery. at is the index of
	// the last '@' in the recipient. mess is the open message, positioned
	// at 0, to become the program's fd 0. A non-empty report instead of a
	// command answers the request directly.
	Command(req Request, at int, mess *os.File) (cmd *exec.Cmd, report string)
	// Report turns the finished program into "letter text".
	Report(c Child) string
	// OutputLimit bounds how much program output is kept.
	OutputLimit() int
}

// Server runs the spawner protocol.
type Server struct {
	MessDir string // queue/mess: request message ids are relative to it
	// MessOwner is the uid that must own every message file (qmailq).
	MessOwner int
	Channel   Channel
	// Workers, when not nil, runs the channel's programs that can be run
	// as long-running workers (internal/worker) in them instead of one
	// process per delivery.
	Workers *worker.Pool
}

// Serve announces MaxSlots, then answers every request read from in on
// out, running deliveries concurrently. It returns when in is closed and
// every running delivery has been answered.
func (s *Server) Serve(in io.Reader, out io.Writer) error {
	w := bufio.NewWriter(out)
	var mu sync.Mutex
	var writeErr error
	answer := func(slot byte, report string) {
		// A report is NUL-terminated on the wire: a NUL inside it
		// would desynchronise qmail-send, so the text stops there.
		if i := strings.IndexByte(report, 0); i >= 0 {
			report = report[:i]
		}
		mu.Lock()
		defer mu.Unlock()
		w.WriteByte(slot)
		w.WriteString(report)
		w.WriteByte(0)
		if err := w.Flush(); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	mu.Lock()
	w.WriteByte(MaxSlots)
	err := w.Flush()
	mu.Unlock()
	if err != nil {
		return fmt.Errorf("announcing concurrency: %w", err)
	}

	var used [256]bool
	var usedMu sync.Mutex
	var running sync.WaitGroup
	rr := NewRequestReader(in)
	for {
		req, err := rr.Next()
		if err != nil {
			running.Wait()
			if errors.Is(err, io.EOF) {
				return writeErr
			}
			return fmt.Errorf("reading requests: %w", err)
		}
		if req.Slot >= MaxSlots {
			answer(req.Slot, "ZInternal error: delnum too big. (#4.3.5)\n")
			continue
		}
		usedMu.Lock()
		busy := used[req.Slot]
		if !busy {
			used[req.Slot] = true
		}
		usedMu.Unlock()
		if busy {
			answer(req.Slot, "ZInternal error: delnum in use. (#4.3.5)\n")
			continue
		}
		running.Add(1)
		go func() {
			defer running.Done()
			report := s.deliver(req)
			usedMu.Lock()
			used[req.Slot] = false
			usedMu.Unlock()
			answer(req.Slot, report)
		}()
	}
}

// deliver performs spawn.c's checks and runs one delivery to its report.
func (s *Server) deliver(req Request) string {
	if req.TooLong {
		return "Zqmail-spawn out of memory. (#4.3.0)\n"
	}
	if r := ValidMessID(req.MessID); r != "" {
		return r
	}
	at := lastIndexByte(req.Recipient, '@')
	if at < 0 {
		return "DSorry, address must include host name. (#5.1.3)\n"
	}
	mess, err := fsutil.Open(filepath.Join(s.MessDir, req.MessID))
	if err != nil {
		return "Zqmail-spawn unable to open message. (#4.3.0)\n"
	}
	defer mess.Close()
	st, err := mess.Stat()
	if err != nil {
		return "Zqmail-spawn unable to fstat message. (#4.3.0)\n"
	}
	if !st.Mode().IsRegular() {
		return "ZSorry, message has wrong type. (#4.3.5)\n"
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != s.MessOwner {
		// qmailq has to be trusted: a message owned by anyone else
		// did not come through qmail-queue.
		return "ZSorry, message has wrong owner. (#4.3.5)\n"
	}
	cmd, report := s.Channel.Command(req, at, mess)
	if cmd == nil {
		return report
	}
	out := &limitedBuffer{limit: s.Channel.OutputLimit()}
	if s.Workers != nil {
		if res, ok := s.Workers.Run(cmd, mess, out); ok {
			return s.Channel.Report(Child{Crashed: res.Crashed, ExitCode: res.ExitCode, Output: out.bytes()})
		}
	}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Stdin = mess
	child := Child{}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			// The program could not be started: as exec failing in
			// the child, which qmail reports as a temporary or
			// permanent exec failure.
			return s.Channel.Report(Child{ExitCode: execFailureCode(err)})
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			child.Crashed = true
		} else {
			child.ExitCode = ee.ExitCode()
		}
	}
	child.Output = out.bytes()
	return s.Channel.Report(child)
}

// execFailureCode maps a failed exec to the exit code the forked child
// would have used: temporary errors 111 (qmail's QLX_EXECSOFT is 120
// for lspawn, but the channel maps it), permanent ones 100.
func execFailureCode(err error) int {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.EACCES, syscall.ENOEXEC, syscall.ENOTDIR, syscall.ELOOP:
			return -100
		}
	}
	return -111
}

func lastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// limitedBuffer keeps program output up to a limit and, past it, records
// that output was cut (spawn.c's truncreport). It is written to from the
// goroutines os/exec uses to copy the program's output.
type limitedBuffer struct {
	mu        sync.Mutex
	limit     int
	buf       []byte
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.limit - len(b.buf)
	if room >= len(p) {
		b.buf = append(b.buf, p...)
	} else {
		if room > 0 {
			b.buf = append(b.buf, p[:room]...)
		}
		b.truncated = true
	}
	return len(p), nil
}

// ReadFrom reads r to its end, keeping what fits. io.Copy uses it
// instead of making a 32 KiB buffer for each delivery's output, which is
// rarely more than a line.
func (b *limitedBuffer) ReadFrom(r io.Reader) (int64, error) {
	chunk := make([]byte, 1024)
	var total int64
	for {
		n, err := r.Read(chunk)
		b.Write(chunk[:n])
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func (b *limitedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.truncated {
		return b.buf
	}
	return b.truncate()
}

// truncMessage is what spawn.c appends to an over-long report.
const truncMessage = "\nError report too long, sorry.\n"

func (b *limitedBuffer) truncate() []byte {
	n := b.limit - len(truncMessage) - 3
	if n < 0 {
		n = 0
	}
	if n > len(b.buf) {
		n = len(b.buf)
	}
	return append(b.buf[:n:n], truncMessage...)
}
