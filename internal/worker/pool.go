package worker

import (
	"debug/buildinfo"
	"encoding/binary"
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

// Deliveries one worker runs at a time. A qmail-local worker runs its
// account's deliveries side by side, so that one process (not one per
// delivery under way) serves a busy account (local.ServeWorker). A
// qmail-remote worker keeps one connection cache and runs one delivery
// at a time.
const (
	LocalPerWorker  = 32
	RemotePerWorker = 1
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
// deliveries through them, up to perWorker at a time in one worker. The
// zero value is not usable: use NewPool. It is safe for concurrent use.
type Pool struct {
	idleTimeout time.Duration
	maxIdle     int
	perWorker   int
	log         io.Writer
	verify      *Verifier

	mu        sync.Mutex
	procs     map[key][]*proc // the live workers, busy or idle
	idleCount int             // workers with no delivery under way
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

// proc is one worker process.
type proc struct {
	key    key
	cmd    *exec.Cmd
	conn   *net.UnixConn
	exited chan struct{}
	ready  chan struct{} // closed once its hello has come, or not
	hello  error         // why no hello came; set before ready is closed

	// Guarded by Pool.mu.
	busy     int // deliveries under way
	lastUsed time.Time
	retiring bool // it takes no more deliveries
	gone     bool // out of Pool.procs, its socket closed or to be

	// Guarded by mu: the deliveries waiting for their answers.
	mu      sync.Mutex
	waiting map[uint32]chan answer
	nextTag uint32
	dead    bool // its socket has failed: no answer will come
}

// answer is a worker's answer to one request; ok is false when the
// worker died first.
type answer struct {
	ok          bool
	code, flags byte
	output      []byte
}

// NewPool makes a pool whose workers' standard error (the worker's own
// complaints, not deliveries' reports) goes to log. A worker runs up to
// perWorker deliveries at a time (LocalPerWorker, RemotePerWorker; the
// program's worker mode must allow as many). Idle workers are ended
// after idleTimeout, and the least recently used one whenever more than
// maxIdle are idle.
func NewPool(log io.Writer, idleTimeout time.Duration, maxIdle, perWorker int) *Pool {
	p := &Pool{
		idleTimeout: idleTimeout,
		maxIdle:     maxIdle,
		perWorker:   max(perWorker, 1),
		log:         log,
		verify:      &Verifier{},
		procs:       make(map[key][]*proc),
		stop:        make(chan struct{}),
	}
	go p.expire()
	return p
}

// Run runs the delivery that cmd would run, with fd 0 stdin, in a
// worker; once it is over, what it wrote to fd 1 and 2 (the first
// MaxOutput bytes) goes to out. handled is false when cmd is not for a
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
	// A worker that has exited without being reaped yet, or began
	// to retire, may not take the request: then another is tried.
	for attempt := 0; attempt < 3; attempt++ {
		w := p.take(k, cmd)
		if err = w.waitReady(); err != nil {
			p.release(w, notSent)
			if errors.Is(err, errNoHello) {
				p.verify.refuse(cmd.Path)
			}
			fmt.Fprintf(p.log, "worker: %s: %v; running it once per delivery\n", cmd.Args[0], err)
			return Result{}, false
		}
		res, outcome := w.deliver(args, stdin, out)
		p.release(w, outcome)
		switch outcome {
		case answered:
			return res, true
		case died:
			return Result{Crashed: true}, true
		}
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

// launch starts the worker process w stands for, then reads its hello
// and its answers. A failure to start it is w's error: the deliveries
// waiting for it learn it from waitReady.
func (p *Pool) launch(w *proc, cmd *exec.Cmd) {
	conn, wcmd, err := p.startProcess(cmd)
	if err != nil {
		w.fail(err)
		close(w.exited)
		return
	}
	w.conn, w.cmd = conn, wcmd
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		wcmd.Wait()
		close(w.exited)
	}()
	w.awaitHello()
}

// startProcess starts "PROGRAM --worker" for cmd, its end of the socket
// as fd 3.
func (p *Pool) startProcess(cmd *exec.Cmd) (*net.UnixConn, *exec.Cmd, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(pair[0]), "worker")
	theirs := os.NewFile(uintptr(pair[1]), "worker")
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("worker socket: %w", err)
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
		return nil, nil, err
	}
	return conn, wcmd, nil
}

// fail marks a worker that never became ready, with why, and wakes the
// deliveries waiting for it.
func (w *proc) fail(err error) {
	w.hello = err
	w.mu.Lock()
	w.dead = true
	w.mu.Unlock()
	close(w.ready)
}

// awaitHello reads the worker's hello, then its answers.
func (w *proc) awaitHello() {
	hello := make([]byte, len(Hello)+1)
	w.conn.SetReadDeadline(time.Now().Add(helloTimeout))
	n, err := w.conn.Read(hello)
	w.conn.SetReadDeadline(time.Time{})
	if err != nil || string(hello[:n]) != Hello {
		w.fail(errNoHello)
		return
	}
	close(w.ready)
	w.readAnswers()
}

// waitReady waits for the worker's hello.
func (w *proc) waitReady() error {
	<-w.ready
	return w.hello
}

// outcome is what became of a request to a worker.
type outcome int

const (
	answered outcome = iota // the worker answered: res holds its exit code
	died                    // the worker took the request and died: a crash
	notSent                 // the worker did not take the request
)

// deliver hands the worker one delivery and waits for its answer, whose
// output goes to out.
func (w *proc) deliver(args []byte, stdin *os.File, out io.Writer) (Result, outcome) {
	tag, answerc := w.expect()
	if answerc == nil {
		return Result{}, notSent
	}
	msg := make([]byte, tagSize, tagSize+len(args))
	binary.LittleEndian.PutUint32(msg, tag)
	msg = append(msg, args...)
	if _, _, err := w.conn.WriteMsgUnix(msg, unix.UnixRights(int(stdin.Fd())), nil); err != nil {
		// A SOCK_SEQPACKET send fails only when the worker's end is
		// closed: it has exited, and nothing was delivered.
		w.forget(tag)
		return Result{}, notSent
	}
	a := <-answerc
	out.Write(a.output)
	switch {
	case !a.ok:
		// No answer: the worker died with the delivery under way,
		// as a crashed program.
		return Result{}, died
	case a.flags&flagNotTaken != 0:
		return Result{}, notSent
	}
	if a.flags&flagRetiring != 0 {
		w.mu.Lock()
		w.dead = true // no more requests; the answers under way still come
		w.mu.Unlock()
	}
	return Result{ExitCode: int(a.code)}, answered
}

// expect registers a request and gives its tag and the channel its
// answer arrives on; the channel is nil when the worker can take no
// request.
func (w *proc) expect() (uint32, chan answer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return 0, nil
	}
	w.nextTag++
	c := make(chan answer, 1)
	w.waiting[w.nextTag] = c
	return w.nextTag, c
}

func (w *proc) forget(tag uint32) {
	w.mu.Lock()
	delete(w.waiting, tag)
	w.mu.Unlock()
}

// readAnswers hands each answer to the delivery waiting for it, until
// the socket fails; then the deliveries still waiting have crashed.
func (w *proc) readAnswers() {
	buf := make([]byte, answerHeader+MaxOutput+1)
	for {
		n, err := w.conn.Read(buf)
		if err != nil || n < answerHeader || n > answerHeader+MaxOutput {
			break
		}
		tag := binary.LittleEndian.Uint32(buf[:tagSize])
		w.mu.Lock()
		c := w.waiting[tag]
		delete(w.waiting, tag)
		w.mu.Unlock()
		if c != nil {
			output := append([]byte(nil), buf[answerHeader:n]...)
			c <- answer{ok: true, code: buf[tagSize], flags: buf[tagSize+1], output: output}
		}
	}
	w.mu.Lock()
	w.dead = true
	for tag, c := range w.waiting {
		delete(w.waiting, tag)
		c <- answer{}
	}
	w.mu.Unlock()
}

// take picks a worker for key k with room for one more delivery and
// counts it in: the busiest one, so that deliveries for one account
// share a process. When none has room, it starts one for cmd; the
// deliveries that come while it starts share it too.
func (p *Pool) take(k key, cmd *exec.Cmd) *proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *proc
	var dead []*proc
	for _, w := range p.procs[k] {
		if w.retiring || w.busy >= p.perWorker {
			continue
		}
		select {
		case <-w.exited:
			// It died: handed a delivery, it would make it look
			// crashed without having tried it.
			w.retiring = true
			if w.busy == 0 {
				dead = append(dead, w)
			}
			continue
		default:
		}
		if best == nil || w.busy > best.busy || (w.busy == best.busy && w.lastUsed.After(best.lastUsed)) {
			best = w
		}
	}
	for _, w := range dead {
		p.idleCount--
		p.drop(w)
	}
	if best != nil {
		if best.busy == 0 {
			p.idleCount--
		}
		best.busy++
		return best
	}
	w := &proc{
		key: k, busy: 1, retiring: p.closed,
		exited: make(chan struct{}), ready: make(chan struct{}),
		waiting: make(map[uint32]chan answer),
	}
	p.procs[k] = append(p.procs[k], w)
	go p.launch(w, cmd)
	return w
}

// release counts a delivery in w as over.
func (p *Pool) release(w *proc, o outcome) {
	p.mu.Lock()
	w.busy--
	w.lastUsed = time.Now()
	if o != answered {
		w.retiring = true
	} else {
		w.mu.Lock()
		if w.dead {
			w.retiring = true
		}
		w.mu.Unlock()
	}
	switch {
	case w.busy > 0:
	case w.retiring || p.closed:
		p.drop(w)
	default:
		p.idleCount++
		for p.idleCount > p.maxIdle {
			p.idleCount--
			p.drop(p.oldestIdle())
		}
	}
	p.mu.Unlock()
}

// oldestIdle is the least recently used idle worker. p.mu is held and a
// worker is idle.
func (p *Pool) oldestIdle() *proc {
	var oldest *proc
	for _, ws := range p.procs {
		for _, w := range ws {
			if w.busy == 0 && !w.gone && (oldest == nil || w.lastUsed.Before(oldest.lastUsed)) {
				oldest = w
			}
		}
	}
	return oldest
}

// drop takes a worker with no delivery under way out of the pool (the
// caller has taken it out of idleCount) and closes its socket: it exits
// on reading the end of file (or has already died) and is reaped. p.mu
// is held.
func (p *Pool) drop(w *proc) {
	if w.gone {
		return
	}
	w.gone = true
	ws := p.procs[w.key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(p.procs, w.key)
	} else {
		p.procs[w.key] = ws
	}
	w.retiring = true
	if w.conn != nil { // nil when its process did not start
		w.conn.Close()
	}
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
			p.mu.Lock()
			var old []*proc
			for _, ws := range p.procs {
				for _, w := range ws {
					if w.busy == 0 && now.Sub(w.lastUsed) >= p.idleTimeout {
						old = append(old, w)
					}
				}
			}
			for _, w := range old {
				p.idleCount--
				p.drop(w)
			}
			p.mu.Unlock()
		}
	}
}

// Close ends every idle worker and waits for all workers to exit; busy
// ones are ended when their deliveries are over. Run must not be called
// after Close.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	var idle []*proc
	for _, ws := range p.procs {
		for _, w := range ws {
			if w.busy == 0 {
				idle = append(idle, w)
			} else {
				w.retiring = true
			}
		}
	}
	for _, w := range idle {
		p.idleCount--
		p.drop(w)
	}
	p.mu.Unlock()
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
