package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/goqmail/goqmail/internal/fsutil"
	"golang.org/x/sys/unix"
)

// StaleAge is qmail's OSSIFIED: a pid/ file, or a message left in state
// S2 or S3 (mess/N, perhaps intd/N, but neither info/N nor todo/N), is
// removed once its atime is this old. It must exceed Lifetime, so that
// no running qmail-queue can still be working on it.
const StaleAge = 36 * time.Hour

// CleanOp is a qmail-clean command.
type CleanOp byte

const (
	// CleanFoop removes intd/N and mess/N%23/N: the end of a message.
	CleanFoop CleanOp = 'f'
	// CleanTodo removes intd/N and todo/N: a message preprocessed.
	CleanTodo CleanOp = 't'
)

// Replies of qmail-clean, one byte per command.
const (
	CleanOK        = '+' // done (files already gone count as done)
	CleanFailed    = '!' // a removal failed
	CleanMalformed = 'x' // not a command
)

// Limits on a command, NUL included (qmail-clean.c): shorter than
// "foop/1\0" or longer than cleanMaxCommand is malformed.
const (
	cleanMinCommand = 7
	cleanMaxCommand = 100
)

// cleanPidEvery is how many commands qmail-clean serves between two
// sweeps of pid/ (one sweep before the first command, then one every 31).
const cleanPidEvery = 30

// ParseCleanCommand parses one qmail-clean command, without its NUL:
// "foop/N" or "todo/N", N decimal digits only. ok is false for anything
// else, which qmail-clean answers with 'x'. (qmail's own parser lets a
// few malformed forms through; this one accepts exactly what qmail-send
// sends.)
func ParseCleanCommand(cmd []byte) (op CleanOp, id uint64, ok bool) {
	if len(cmd)+1 < cleanMinCommand || len(cmd)+1 > cleanMaxCommand {
		return 0, 0, false
	}
	switch string(cmd[:5]) {
	case "foop/":
		op = CleanFoop
	case "todo/":
		op = CleanTodo
	default:
		return 0, 0, false
	}
	for _, c := range cmd[5:] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
	}
	id, err := strconv.ParseUint(string(cmd[5:]), 10, 64)
	if err != nil {
		return 0, 0, false // out of range
	}
	return op, id, true
}

// AppendCleanCommand appends the command for op on message id, NUL
// included, as qmail-send writes it to qmail-clean.
func AppendCleanCommand(b []byte, op CleanOp, id uint64) []byte {
	switch op {
	case CleanFoop:
		b = append(b, "foop/"...)
	case CleanTodo:
		b = append(b, "todo/"...)
	}
	b = strconv.AppendUint(b, id, 10)
	return append(b, 0)
}

// Cleaner does qmail-clean's work on the queue at Dir. It runs with the
// queue owner's rights (qmailq), which qmail-send lacks.
type Cleaner struct {
	Dir string
	// Now is the clock used to judge pid/ files stale; nil means
	// time.Now. Tests move it forward rather than wait 36 hours.
	Now func() time.Time
}

func (c *Cleaner) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Do carries out one command and returns the reply byte: removing a file
// that is already gone is success, any other failure is CleanFailed.
func (c *Cleaner) Do(op CleanOp, id uint64) byte {
	var second string
	switch op {
	case CleanFoop:
		second = MessPath(c.Dir, id)
	case CleanTodo:
		second = FlatPath(c.Dir, "todo", id)
	default:
		return CleanMalformed
	}
	if !removeGone(FlatPath(c.Dir, "intd", id)) || !removeGone(second) {
		return CleanFailed
	}
	return CleanOK
}

// removeGone unlinks path and reports success when it is gone.
func removeGone(path string) bool { return fsutil.Unlink(path) == nil }

// RemoveStalePids removes every pid/ entry whose atime is StaleAge old:
// what a qmail-queue killed between creating it and renaming it left
// behind. Failures are ignored, as in qmail: the next sweep tries again.
func (c *Cleaner) RemoveStalePids() {
	pidDir := appendPath(c.Dir, "pid")
	limit := c.now().Add(-StaleAge)
	eachName(pidDir, func(name string) error {
		path := pidDir + "/" + name
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil && !time.Unix(st.Atim.Unix()).After(limit) {
			unix.Unlink(path)
		}
		return nil
	})
}

// ErrCleanReply is returned by Serve when it cannot send a reply:
// qmail-clean then exits 100.
var ErrCleanReply = errors.New("qmail-clean: cannot write reply")

// Serve is qmail-clean's loop: read NUL-terminated commands from r,
// answer each with one byte on w, and sweep pid/ before the first command
// and every 31st after it. It returns nil at the end of the input (a
// command cut short by the end is dropped), ErrCleanReply (wrapped) when
// a reply cannot be written. Memory is bounded: an overlong command is
// skipped up to its NUL and answered 'x'.
//
// Replies wait while more commands are already at hand and go out
// together before Serve reads again or sweeps: qmail-send writes its
// requests in batches, and one write answers a batch.
func (c *Cleaner) Serve(r io.Reader, w io.Writer) error {
	in := bufio.NewReaderSize(r, 256)
	out := bufio.NewWriterSize(w, 256)
	flush := func() error {
		if err := out.Flush(); err != nil {
			return fmt.Errorf("%w: %v", ErrCleanReply, err)
		}
		return nil
	}
	countdown := 0
	for {
		if countdown > 0 {
			countdown--
		} else {
			if err := flush(); err != nil {
				return err
			}
			c.RemoveStalePids()
			countdown = cleanPidEvery
		}
		if !commandBuffered(in) {
			if err := flush(); err != nil {
				return err
			}
		}
		cmd, tooLong, err := readCommand(in)
		if err != nil {
			// End of input, or a read error: qmail stops the same
			// way. What is answered still goes out, for whoever
			// still reads.
			out.Flush()
			return nil
		}
		reply := byte(CleanMalformed)
		if op, id, ok := ParseCleanCommand(cmd); ok && !tooLong {
			reply = c.Do(op, id)
		}
		out.WriteByte(reply) // errors are sticky: the next flush reports them
	}
}

// commandBuffered says whether a whole command is in in's buffer, so
// that reading it will not wait for the other end.
func commandBuffered(in *bufio.Reader) bool {
	held, _ := in.Peek(in.Buffered())
	return bytes.IndexByte(held, 0) >= 0
}

// readCommand returns the next command without its NUL. A command too
// long for the buffer is skipped up to its NUL and reported by tooLong.
func readCommand(in *bufio.Reader) (cmd []byte, tooLong bool, err error) {
	cmd, err = in.ReadSlice(0)
	if err == nil {
		return cmd[:len(cmd)-1], false, nil
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		_, err = in.ReadSlice(0)
	}
	if err != nil {
		return nil, false, err
	}
	return nil, true, nil
}

// CleanClient is qmail-send's side of the qmail-clean protocol.
type CleanClient struct {
	w   io.Writer
	r   io.Reader
	buf []byte
}

// NewCleanClient talks to a qmail-clean that reads from w and answers on r.
func NewCleanClient(w io.Writer, r io.Reader) *CleanClient {
	return &CleanClient{w: w, r: r, buf: make([]byte, 0, 32)}
}

// Clean sends one command and returns qmail-clean's reply byte. An error
// means the connection to qmail-clean is lost.
func (c *CleanClient) Clean(op CleanOp, id uint64) (byte, error) {
	c.buf = AppendCleanCommand(c.buf[:0], op, id)
	if _, err := c.w.Write(c.buf); err != nil {
		return 0, fmt.Errorf("qmail-clean: sending %s: %w", c.buf[:len(c.buf)-1], err)
	}
	var reply [1]byte
	if _, err := io.ReadFull(c.r, reply[:]); err != nil {
		return 0, fmt.Errorf("qmail-clean: reply to %s: %w", c.buf[:len(c.buf)-1], err)
	}
	return reply[0], nil
}

// Leftovers lists the messages a crash left in state S2 or S3, as
// qmail-send's cleanup pass finds them: a mess/ file whose atime is more
// than StaleAge before now, with neither info/N nor todo/N. Each is for
// qmail-clean's CleanFoop. See ScanLeftovers.
func Leftovers(dir string, now time.Time) ([]uint64, error) {
	var ids []uint64
	err := ScanLeftovers(dir, now, func(id uint64) error {
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// ScanLeftovers calls found for each message Leftovers lists, as the scan
// meets it, so memory does not grow with the queue (qmail-send passes a
// function that asks its qmail-clean for CleanFoop). An entry whose state
// cannot be told is left for a later pass. The scan stops at the first
// error of found; a directory that cannot be read is skipped, and the
// first such failure is returned once the other directories are done.
func ScanLeftovers(dir string, now time.Time, found func(id uint64) error) error {
	var firstErr error
	limit := now.Add(-StaleAge)
	for split := 0; split < Split; split++ {
		sub := appendPath(dir, "mess/"+strconv.Itoa(split))
		err := eachName(sub, func(name string) error {
			if !allDigits(name) {
				return nil
			}
			id, err := strconv.ParseUint(name, 10, 64)
			if err != nil {
				return nil
			}
			var st unix.Stat_t
			if unix.Stat(MessPath(dir, id), &st) != nil {
				return nil // probably just finished by qmail-send or qmail-queue
			}
			if !time.Unix(st.Atim.Unix()).Before(limit) {
				return nil
			}
			if exists(SplitPath(dir, "info", id)) || exists(FlatPath(dir, "todo", id)) {
				return nil
			}
			return found(id)
		})
		var stop *stopScan
		if errors.As(err, &stop) {
			return stop.err
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// stopScan carries an error of the caller's function out of eachName.
type stopScan struct{ err error }

func (s *stopScan) Error() string { return s.err.Error() }

// eachName calls fn for each entry of dir, reading the directory in
// batches. An error of fn comes back as *stopScan.
func eachName(dir string, fn func(name string) error) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, name := range names {
			if ferr := fn(name); ferr != nil {
				return &stopScan{ferr}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", dir, err)
		}
	}
}

// exists reports whether path exists; a failure other than "does not
// exist" counts as existing, so that nothing is removed on doubt.
func exists(path string) bool {
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
