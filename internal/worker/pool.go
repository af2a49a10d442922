package worker

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ModulePath is goqmail's module: a program whose build information
// names a main package under it understands Arg.
const ModulePath = "github.com/goqmail/goqmail"

// DefaultIdleTimeout is how long an idle worker is kept for the next
// delivery with the same ids.
const DefaultIdleTimeout = 10 * time.Second

// Idle workers kept by qmail-lspawn and qmail-rspawn at most: qmail's
// default concurrencylocal and concurrencyremote. Local workers are per
// account: without a bound, mail for many users in a few seconds would
// leave as many idle processes.
const (
	LocalMaxIdle  = 10
	RemoteMaxIdle = 20
)

// helloTimeout bounds a new worker's start.
const helloTimeout = 10 * time.Second

// Result is how a delivery in a worker ended, as the exit of the
// program it stands for.
type Result struct {
	Crashed  bool // the worker died before answering
	ExitCode int
}

// Pool keeps workers, per program, directory and ids, and runs
// deliveries through them. The zero value is not usable: use NewPool.
// It is safe for concurrent use.
type Pool struct {
	idleTimeout time.Duration
	maxIdle     int
	log         io.Writer
	verify      *Verifier

	mu        sync.Mutex
	idle      map[key][]*proc
	idleCount int // workers in idle
	closed    bool
	wg        sync.WaitGroup // workers not yet reaped
	stop      chan struct{}
}

// key is what a worker is bound to: everything of the exec.Cmd it
// stands for that is fixed at process start.
type key struct {
	path, argv0, dir string
	cred             bool
	uid, gid         uint32
	groups           string
}

type proc struct {
	cmd      *exec.Cmd
	conn     *net.UnixConn
	lastUsed time.Time
	exited   chan struct{}
}

// NewPool makes a pool whose workers' standard error (the worker's own
// complaints, not deliveries' reports) goes to log. Idle workers are
// ended after idleTimeout, and the least recently used one whenever
// more than maxIdle are idle.
func NewPool(log io.Writer, idleTimeout time.Duration, maxIdle int) *Pool {
	p := &Pool{
		idleTimeout: idleTimeout,
		maxIdle:     maxIdle,
		log:         log,
		verify:      &Verifier{},
		idle:        make(map[key][]*proc),
		stop:        make(chan struct{}),
	}
	go p.expire()
	return p
}

// Run runs the delivery that cmd would run, with fd 0 stdin and fd 1 and
// 2 copied to out, in a worker. handled is false when cmd is not for a
// worker (not one of goqmail's programs, an environment or descriptors
// of its own) or no worker could be started: the caller then runs cmd
// itself, as qmail would.
func (p *Pool) Run(cmd *exec.Cmd, stdin *os.File, out io.Writer) (res Result, handled bool) {
	k, ok := poolKey(cmd)
	if !ok || !p.verify.Speaks(cmd.Path, cmd.Args[0]) {
		return Result{}, false
	}
	args, err := encodeArgs(cmd.Args[1:])
	if err != nil {
		return Result{}, false
	}
	// A worker that has exited without being reaped yet (or after
	// answering a delivery with Request.Exit) does not take the
	// request: then one more worker is tried.
	for attempt := 0; attempt < 2; attempt++ {
		w := p.take(k)
		if w == nil {
			if w, err = p.start(cmd); err != nil {
				if errors.Is(err, errNoHello) {
					p.verify.refuse(cmd.Path)
				}
				fmt.Fprintf(p.log, "worker: %s: %v; running it once per delivery\n", cmd.Args[0], err)
				return Result{}, false
			}
		}
		res, outcome := w.deliver(args, stdin, out)
		switch outcome {
		case answered:
			p.put(k, w)
			return res, true
		case died:
			p.retire(w)
			return Result{Crashed: true}, true
		}
		p.retire(w)
	}
	return Result{}, false
}

// poolKey is false for a cmd that a worker cannot stand for.
func poolKey(cmd *exec.Cmd) (key, bool) {
	if cmd.Env != nil || cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil ||
		len(cmd.ExtraFiles) > 0 || len(cmd.Args) == 0 {
		return key{}, false
	}
	k := key{path: cmd.Path, argv0: cmd.Args[0], dir: cmd.Dir}
	if a := cmd.SysProcAttr; a != nil {
		rest := *a
		rest.Credential = nil
		if !reflect.DeepEqual(rest, syscall.SysProcAttr{}) {
			return key{}, false // anything but ids is the caller's business
		}
		if c := a.Credential; c != nil {
			k.cred, k.uid, k.gid = true, c.Uid, c.Gid
			k.groups = fmt.Sprint(c.Groups)
			if c.NoSetGroups {
				return key{}, false
			}
		}
	}
	return k, true
}

var errNoHello = errors.New("no worker hello")

// start starts a worker that stands for cmd.
func (p *Pool) start(cmd *exec.Cmd) (*proc, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(pair[0]), "worker")
	theirs := os.NewFile(uintptr(pair[1]), "worker")
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, fmt.Errorf("worker socket: %w", err)
	}
	conn := c.(*net.UnixConn)
	wcmd := &exec.Cmd{
		Path:       cmd.Path,
		Args:       []string{cmd.Args[0], Arg},
		Dir:        cmd.Dir,
		ExtraFiles: []*os.File{theirs},
		Stderr:     p.log,
	}
	if cmd.SysProcAttr != nil {
		attr := *cmd.SysProcAttr
		wcmd.SysProcAttr = &attr
	}
	err = wcmd.Start()
	theirs.Close()
	if err != nil {
		conn.Close()
		return nil, err
	}
	w := &proc{cmd: wcmd, conn: conn, exited: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		wcmd.Wait()
		close(w.exited)
	}()
	hello := make([]byte, len(Hello)+1)
	conn.SetReadDeadline(time.Now().Add(helloTimeout))
	n, err := conn.Read(hello)
	conn.SetReadDeadline(time.Time{})
	if err != nil || string(hello[:n]) != Hello {
		p.retire(w)
		return nil, errNoHello
	}
	return w, nil
}

// outcome is what became of a request to a worker.
type outcome int

const (
	answered outcome = iota // the worker answered: res holds its exit code
	died                    // the worker took the request and died: a crash
	notSent                 // the worker did not take the request
)

// deliver hands the worker one delivery; unless it is answered, the
// worker must not be used again.
func (w *proc) deliver(args []byte, stdin *os.File, out io.Writer) (Result, outcome) {
	// A bare pipe: its write end only passes through this process, and
	// its read end is read with blocking reads, so neither is offered to
	// the runtime's poller (four fcntl and two epoll_ctl a pipe).
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return Result{}, notSent
	}
	outR := os.NewFile(uintptr(p[0]), "worker output")
	_, _, err := w.conn.WriteMsgUnix(args, unix.UnixRights(int(stdin.Fd()), p[1]), nil)
	unix.Close(p[1])
	if err != nil {
		// A SOCK_SEQPACKET send fails only when the worker's end is
		// closed: it has exited, and nothing was delivered.
		outR.Close()
		return Result{}, notSent
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(out, outR)
		outR.Close()
		close(copied)
	}()
	var answer [2]byte
	n, err := w.conn.Read(answer[:])
	<-copied
	if err != nil || n != 1 {
		// No answer: the worker died with the delivery under way,
		// as a crashed program.
		return Result{}, died
	}
	return Result{ExitCode: int(answer[0])}, answered
}

func (p *Pool) take(k key) *proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	idle := p.idle[k]
	for len(idle) > 0 {
		// The most recently used: the others can then expire.
		w := idle[len(idle)-1]
		idle = idle[:len(idle)-1]
		p.idle[k] = idle
		p.idleCount--
		select {
		case <-w.exited:
			// It died while idle: handed a delivery, it would
			// make it look crashed without having tried it.
			p.retire(w)
		default:
			return w
		}
	}
	return nil
}

func (p *Pool) put(k key, w *proc) {
	w.lastUsed = time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.retire(w)
		return
	}
	p.idle[k] = append(p.idle[k], w)
	p.idleCount++
	var evicted []*proc
	for p.idleCount > p.maxIdle {
		evicted = append(evicted, p.removeOldestIdle())
	}
	p.mu.Unlock()
	for _, old := range evicted {
		p.retire(old)
	}
}

// removeOldestIdle takes the least recently used idle worker out of the
// pool. p.mu is held and a worker is idle. Each list is oldest first.
func (p *Pool) removeOldestIdle() *proc {
	var oldestKey key
	var oldest *proc
	for k, idle := range p.idle {
		if len(idle) > 0 && (oldest == nil || idle[0].lastUsed.Before(oldest.lastUsed)) {
			oldestKey, oldest = k, idle[0]
		}
	}
	rest := p.idle[oldestKey][1:]
	if len(rest) == 0 {
		delete(p.idle, oldestKey)
	} else {
		p.idle[oldestKey] = rest
	}
	p.idleCount--
	return oldest
}

// retire closes the worker's socket; it exits on reading the end of
// file (or has already died) and is reaped.
func (p *Pool) retire(w *proc) {
	w.conn.Close()
}

// expire retires the workers idle for longer than the idle timeout.
func (p *Pool) expire() {
	tick := time.NewTicker(max(p.idleTimeout/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-tick.C:
			var old []*proc
			p.mu.Lock()
			for k, idle := range p.idle {
				keep := idle[:0]
				for _, w := range idle {
					if now.Sub(w.lastUsed) >= p.idleTimeout {
						old = append(old, w)
						p.idleCount--
					} else {
						keep = append(keep, w)
					}
				}
				if len(keep) == 0 {
					delete(p.idle, k)
				} else {
					p.idle[k] = keep
				}
			}
			p.mu.Unlock()
			for _, w := range old {
				p.retire(w)
			}
		}
	}
}

// Close ends every idle worker and waits for all workers to exit; busy
// ones are ended when their delivery is over. Run must not be called
// after Close.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	idle := p.idle
	p.idle = map[key][]*proc{}
	p.idleCount = 0
	p.mu.Unlock()
	for _, ws := range idle {
		for _, w := range ws {
			p.retire(w)
		}
	}
	p.wg.Wait()
}

// Verifier tells goqmail's programs from anything else installed under
// their names. It remembers its answer per file (device, inode, size,
// modification time), so replacing the file is noticed. It is safe for
// concurrent use.
type Verifier struct {
	mu      sync.Mutex
	answers map[string]verdict
}

type verdict struct {
	id   fileID
	name string // the program name the answer is for
	ok   bool
}

type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

// Speaks reports whether the program at path is goqmail's program name
// (its main package is ModulePath/cmd/name), built with worker support.
func (v *Verifier) Speaks(file, name string) bool {
	st, err := os.Stat(file)
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	id := fileID{dev: uint64(sys.Dev), ino: sys.Ino, size: st.Size(), mtime: st.ModTime().UnixNano()}
	v.mu.Lock()
	a, known := v.answers[file]
	v.mu.Unlock()
	if known && a.id == id && a.name == name {
		return a.ok
	}
	ok = false
	if info, err := buildinfo.ReadFile(file); err == nil {
		ok = info.Main.Path == ModulePath && info.Path == path.Join(ModulePath, "cmd", name) &&
			!strings.Contains(name, "/")
	}
	v.mu.Lock()
	if v.answers == nil {
		v.answers = make(map[string]verdict)
	}
	v.answers[file] = verdict{id: id, name: name, ok: ok}
	v.mu.Unlock()
	return ok
}

// refuse records that the program at file, although goqmail's, did not
// start as a worker (an older version): it runs once per delivery until
// the file changes.
func (v *Verifier) refuse(file string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if a, ok := v.answers[file]; ok {
		a.ok = false
		v.answers[file] = a
	}
}
