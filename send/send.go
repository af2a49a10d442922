// Package send is qmail's queue manager: qmail-send (preprocessing of
// todo/, recipient rewriting, delivery scheduling through the spawners,
// retries, bounces, completion), qmail-start's process wiring, and, in
// send/spawn, the spawners themselves.
package send

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/internal/fsutil"
	"github.com/goqmail/goqmail/queue"
	"golang.org/x/sys/unix"
)

// Timing constants of qmail-send.c.
const (
	sleepTodo    = 1500 * time.Second // todo/ is rescanned at least this often
	sleepSysFail = 123 * time.Second  // retry after a system failure
	// todoScanGap spaces the scans of todo/ that triggers ask for: a
	// burst of qmail-queue runs pulls the trigger for each message, and
	// todo/ may hold hundreds of direct messages (send/direct.go).
	todoScanGap  = 10 * time.Millisecond
	sleepCleanup = 76431 * time.Second // between sweeps for leftovers
	ossified     = 129600 * time.Second
	reportMax    = 10000 // bytes of a spawner report qmail-send keeps
)

// The two delivery channels.
const (
	chanLocal = iota
	chanRemote
	numChannels
)

var (
	chanDir    = [numChannels]string{"local", "remote"}
	chanSkip   = [numChannels]int64{10, 20}
	chanToWord = [numChannels]string{" to local ", " to remote "}
)

// Config is what qmail-send needs from its environment.
type Config struct {
	Home string // the qmail home; the queue is Home/queue
	Log  io.Writer
	// Spawn[c] and SpawnReplies[c] talk to qmail-lspawn (c=0) and
	// qmail-rspawn (c=1); Clean and CleanReplies to qmail-clean.
	Spawn        [numChannels]io.Writer
	SpawnReplies [numChannels]io.Reader
	Clean        io.Writer
	CleanReplies io.Reader
	Signals      <-chan os.Signal // SIGALRM, SIGHUP, SIGTERM
}

// settings are the control files qmail-send reads at startup.
type settings struct {
	rw               *Rewriter
	concurrency      [numChannels]int
	lifetime         time.Duration
	bounceFrom       string
	bounceHost       string
	doubleBounceTo   string
	doubleBounceHost string
}

func readSettings(home string) (*settings, error) {
	ctl, err := control.Open(home)
	if err != nil {
		return nil, err
	}
	s := &settings{}
	line := func(name string, useMe bool, def string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = ctl.LineDefault(name, useMe, def)
		return v
	}
	s.bounceFrom = line("bouncefrom", false, "MAILER-DAEMON")
	s.bounceHost = line("bouncehost", true, "bouncehost")
	s.doubleBounceTo = line("doublebounceto", false, "postmaster")
	s.doubleBounceHost = line("doublebouncehost", true, "doublebouncehost")
	envnoathost := line("envnoathost", true, "envnoathost")
	if err != nil {
		return nil, err
	}
	lifetime, err := ctl.Int("queuelifetime", 604800)
	if err != nil {
		return nil, err
	}
	s.lifetime = time.Duration(lifetime) * time.Second
	for c, name := range [numChannels]string{"concurrencylocal", "concurrencyremote"} {
		n, err := ctl.Int(name, [numChannels]int{10, 20}[c])
		if err != nil {
			return nil, err
		}
		s.concurrency[c] = n
	}
	s.rw, err = readRewriter(ctl, envnoathost)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// readRewriter reads the files SIGHUP rereads, and percenthack.
func readRewriter(ctl *control.Files, envnoathost string) (*Rewriter, error) {
	locals, err := ctl.ListDefault("locals")
	if err != nil {
		return nil, err
	}
	percent, _, err := ctl.List("percenthack")
	if err != nil {
		return nil, err
	}
	vdoms, _, err := ctl.List("virtualdomains")
	if err != nil {
		return nil, err
	}
	return NewRewriter(envnoathost, locals, percent, vdoms), nil
}

// message is one preprocessed message (it has info/N), or one delivered
// directly from todo/N (direct.go).
type message struct {
	id     uint64
	birth  time.Time
	sender string
	// direct, when not nil, is the recipient of a message that has
	// neither info/N nor a channel file yet.
	direct *directRecipient
	// keepMess is set when a direct message's todo/N could not be
	// removed: it is delivered again, and its mess/N must stay.
	keepMess bool
	// pending[c] is true while the channel file exists.
	pending [numChannels]bool
	next    [numChannels]time.Time // next attempt of a pending channel
	pass    [numChannels]*pass     // the running pass, if any
	// due[c] is 1 + the position in Sender.waiting[c] while the channel
	// waits for a pass, 0 otherwise.
	due [numChannels]int
}

// pass is one pass over one channel file of one message.
type pass struct {
	msg      *message
	c        int
	file     *os.File // the channel file, until its end is reached
	rr       *queue.RecordReader
	memory   *record // a direct message's recipient, until started
	offset   int64   // of the next record in file
	inflight int
	deferred bool      // some delivery must be retried
	retry    time.Time // next attempt if anything is deferred
	dying    bool      // past queuelifetime: deferrals become failures
}

type record struct {
	offset int64
	addr   string
}

// delivery is one running delivery, in its spawner slot.
type delivery struct {
	id     uint64 // the log's delivery number
	p      *pass
	offset int64
	recip  string
	// settled is set once a direct message's queue files say what the
	// report will record (settleDirect).
	settled bool
}

type event struct {
	kind   int
	c      int
	slot   byte
	report string
	sig    os.Signal
	split  *splitResult
	// replies are qmail-clean's answers that arrived together, one
	// byte each, oldest first.
	replies string
}

const (
	evTrigger = iota
	evReport
	evSpawnDied
	evSignal
	evSplit     // a message of todo/ has been split into its queue files
	evCleaned   // qmail-clean answered (replies)
	evCleanDied // qmail-clean's pipe is closed
)

// Sender is a running qmail-send.
type Sender struct {
	cfg   Config
	qdir  string
	set   *settings
	log   *logger
	now   func() time.Time
	msgs  map[uint64]*message
	slots [numChannels][]*delivery
	used  [numChannels]int
	alive [numChannels]bool
	cur   [numChannels]*pass // the pass whose records are being started
	// waiting[c] orders the messages whose channel c file waits for a
	// pass by next attempt (schedule.go).
	waiting [numChannels]dueQueue
	// complete lists messages whose channels are all done but whose
	// completion failed, with the time to try again.
	complete    map[uint64]time.Time
	nextDelID   uint64
	exitASAP    bool
	events      chan event
	nextTodo    time.Time
	lastTodo    time.Time // the last scan of todo/
	nextCleanup time.Time
	// splitting holds the messages of todo/ whose files are being
	// written (startSplit in queue.go); todoBehind is set when a scan left
	// messages for later because too many were under way.
	splitting  map[uint64]bool
	todoBehind bool
	// directCount is, per channel, the number of direct messages.
	directCount [numChannels]int
	// cleanWaiting are the callbacks of the requests sent to
	// qmail-clean and not answered yet, oldest first.
	cleanWaiting []func(ok bool)
	cleanAlive   bool
	// cleanOut holds the requests for qmail-clean not yet written: while
	// the main loop runs they go out together before it waits
	// (flushOutput), one write and one wake-up of qmail-clean for all
	// the requests of a pass.
	cleanOut      []byte
	cleanBatching bool
}

// ErrAlreadyRunning is returned when another qmail-send holds lock/sendmutex.
var ErrAlreadyRunning = errors.New("qmail-send is already running")

// Run is qmail-send's main program. It returns after SIGTERM once every
// running delivery has finished, or with an error when it cannot start.
func Run(cfg Config) error {
	s := &Sender{
		cfg:        cfg,
		qdir:       filepath.Join(cfg.Home, "queue"),
		log:        &logger{w: cfg.Log},
		now:        time.Now,
		msgs:       map[uint64]*message{},
		complete:   map[uint64]time.Time{},
		nextDelID:  1,
		events:     make(chan event, 64),
		splitting:  map[uint64]bool{},
		cleanAlive: true,
	}
	set, err := readSettings(cfg.Home)
	if err != nil {
		s.log.line("alert: cannot start: unable to read controls")
		return fmt.Errorf("reading controls: %w", err)
	}
	s.set = set
	mutex, err := os.OpenFile(filepath.Join(s.qdir, "lock", "sendmutex"), os.O_WRONLY, 0)
	if err != nil {
		s.log.line("alert: cannot start: unable to open mutex")
		return fmt.Errorf("opening lock/sendmutex: %w", err)
	}
	defer mutex.Close()
	if err := unix.Flock(int(mutex.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		s.log.line("alert: cannot start: qmail-send is already running")
		return ErrAlreadyRunning
	}
	for c := 0; c < numChannels; c++ {
		var b [1]byte
		if _, err := io.ReadFull(cfg.SpawnReplies[c], b[:]); err != nil {
			s.log.line("alert: cannot start: hath the daemon spawn no fire?")
			return fmt.Errorf("reading spawner concurrency: %w", err)
		}
		if int(b[0]) < s.set.concurrency[c] {
			s.set.concurrency[c] = int(b[0])
		}
		s.slots[c] = make([]*delivery, s.set.concurrency[c])
		s.alive[c] = true
		go s.readReports(c)
	}
	// The trigger is open before the first scan of todo/, so that a
	// message committed after the scan always wakes us.
	trigger, err := os.OpenFile(filepath.Join(s.qdir, "lock", "trigger"), os.O_RDWR, 0)
	if err != nil {
		s.log.line("warning: unable to open lock/trigger; todo/ is scanned every 25 minutes")
	} else {
		defer trigger.Close()
		go s.readTrigger(trigger)
	}
	go func() {
		for sig := range cfg.Signals {
			s.events <- event{kind: evSignal, sig: sig}
		}
	}()
	go s.readCleanReplies()
	s.status()
	s.scanInfo()
	now := s.now()
	s.nextCleanup = now.Add(sleepCleanup)
	s.scanTodo()
	s.loop()
	s.saveRetryTimes()
	s.log.line("status: exiting")
	return nil
}

func (s *Sender) status() {
	line := "status:"
	for c, w := range [numChannels]string{" local ", " remote "} {
		line += w + strconv.Itoa(s.used[c]) + "/" + strconv.Itoa(s.set.concurrency[c])
	}
	if s.exitASAP {
		line += " exitasap"
	}
	s.log.line(line)
}

// path of a queue file: dir/split/id, or dir/id for unsplit directories.
func (s *Sender) path(dir string, id uint64) string {
	switch dir {
	case "todo", "intd", "bounce":
		return filepath.Join(s.qdir, dir, strconv.FormatUint(id, 10))
	}
	return filepath.Join(s.qdir, dir, strconv.FormatUint(id%queue.Split, 10), strconv.FormatUint(id, 10))
}

// relPath is a queue file name as qmail logs it, relative to queue/.
func (s *Sender) relPath(dir string, id uint64) string {
	p, _ := filepath.Rel(s.qdir, s.path(dir, id))
	return p
}

// loop is qmail-send's select loop.
func (s *Sender) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	s.log.batch(true)
	s.cleanBatching = true
	defer func() {
		s.cleanBatching = false
		s.flushClean()
		s.log.batch(false)
	}()
	for {
		s.startDeliveries()
		if s.exitASAP && s.canExit() {
			return
		}
		timer.Reset(s.wakeup())
		s.flushOutput()
		select {
		case ev := <-s.events:
			s.handle(ev)
		case <-timer.C:
		}
		// Drain what else is ready before scheduling again.
		for drained := false; !drained; {
			select {
			case ev := <-s.events:
				s.handle(ev)
			default:
				drained = true
			}
		}
		now := s.now()
		if !s.exitASAP && !now.Before(s.nextTodo) {
			s.scanTodo()
		}
		if !s.exitASAP && !now.Before(s.nextCleanup) {
			s.sweep()
			s.nextCleanup = now.Add(sleepCleanup)
		}
		s.retryCompletions()
	}
}

func (s *Sender) canExit() bool {
	if len(s.splitting) > 0 || len(s.cleanWaiting) > 0 {
		return false
	}
	for c := 0; c < numChannels; c++ {
		if s.alive[c] && s.used[c] > 0 {
			return false
		}
	}
	return true
}

// wakeup is how long to sleep before something becomes due. A scan of
// todo/ is due on time, without qmail's second of fuzz: a trigger's scan
// waits only for todoScanGap.
func (s *Sender) wakeup() time.Duration {
	now := s.now()
	next := s.nextCleanup
	if !s.exitASAP {
		for c := range s.waiting {
			if m := s.waiting[c].first(); m != nil && m.next[c].Before(next) {
				next = m.next[c]
			}
		}
	}
	for _, t := range s.complete {
		if t.Before(next) {
			next = t
		}
	}
	d := next.Sub(now) + time.Second // SLEEP_FUZZ
	if d < time.Second {
		d = time.Second
	}
	if s.exitASAP {
		return d // no more scans
	}
	return min(d, max(s.nextTodo.Sub(now), 0))
}

func (s *Sender) handle(ev event) {
	switch ev.kind {
	case evTrigger:
		// The scan comes after the events drained, at most one per
		// todoScanGap.
		if t := s.lastTodo.Add(todoScanGap); t.Before(s.nextTodo) {
			s.nextTodo = t
		}
	case evReport:
		s.finishDelivery(ev.c, ev.slot, ev.report)
	case evSplit:
		s.splitDone(ev.split)
	case evCleaned:
		for i := 0; i < len(ev.replies); i++ {
			s.cleaned(ev.replies[i] == queue.CleanOK)
		}
	case evCleanDied:
		s.cleanDied()
	case evSpawnDied:
		if s.alive[ev.c] {
			s.log.line("alert: oh no! lost spawn connection! dying...")
			s.alive[ev.c] = false
			s.exitASAP = true
		}
	case evSignal:
		switch ev.sig {
		case unix.SIGTERM:
			s.exitASAP = true
		case unix.SIGALRM:
			now := s.now()
			for _, m := range s.msgs {
				for c := 0; c < numChannels; c++ {
					m.next[c] = now
				}
			}
			s.rescheduleAll()
			for id := range s.complete {
				s.complete[id] = now
			}
		case unix.SIGHUP:
			s.reread()
		}
	}
}

// reread is SIGHUP: only locals and virtualdomains are read again.
func (s *Sender) reread() {
	ctl, err := control.Open(s.cfg.Home)
	if err != nil {
		s.log.line("alert: unable to reread control/locals")
		return
	}
	locals, err := ctl.ListDefault("locals")
	if err != nil {
		s.log.line("alert: unable to reread control/locals")
		return
	}
	vdoms, _, err := ctl.List("virtualdomains")
	if err != nil {
		s.log.line("alert: unable to reread control/virtualdomains")
		return
	}
	old := s.set.rw
	rw := NewRewriter(old.EnvNoAtHost, locals, nil, vdoms)
	rw.PercentHack = old.PercentHack
	s.set.rw = rw
}

// readTrigger turns writes to lock/trigger into events. The FIFO is
// opened read-write so that it always has a writer and reads block
// instead of returning end of file.
func (s *Sender) readTrigger(f *os.File) {
	buf := make([]byte, 256)
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
		s.events <- event{kind: evTrigger}
	}
}

// readReports parses "slot letter text NUL" reports from a spawner.
func (s *Sender) readReports(c int) {
	rr := reportReader{r: bufio.NewReader(s.cfg.SpawnReplies[c])}
	for {
		slot, report, err := rr.next()
		if err != nil {
			s.events <- event{kind: evSpawnDied, c: c}
			return
		}
		s.events <- event{kind: evReport, c: c, slot: slot, report: report}
	}
}

// reportReader splits a spawner's output into reports the way
// qmail-send's del_dochan does: a report ends at a NUL that is not its
// first byte (the slot), and only reportMax bytes of it are kept, the
// slot included, because qmail-rspawn is not trusted to keep it short.
type reportReader struct {
	r    *bufio.Reader
	line []byte
}

// next returns the next report: its slot and the letter and text after
// it, without the NUL. The text may be empty (a mangled report).
func (rr *reportReader) next() (slot byte, report string, err error) {
	for {
		b, err := rr.r.ReadByte()
		if err != nil {
			return 0, "", err
		}
		rr.line = append(rr.line, b)
		if len(rr.line) > reportMax {
			// qmail keeps the first reportMax bytes; the NUL that
			// ends an over-long report is not among them.
			rr.line = rr.line[:reportMax]
		}
		if b != 0 || len(rr.line) < 2 {
			continue
		}
		text := rr.line[1:]
		if text[len(text)-1] == 0 {
			text = text[:len(text)-1]
		}
		slot, report = rr.line[0], string(text)
		rr.line = rr.line[:0]
		return slot, report, nil
	}
}

// cleanup asks qmail-clean to remove files (todo/N or foop/N) and calls
// done with its answer when it comes back as an evCleaned event: the main
// loop goes on with deliveries while qmail-clean unlinks. qmail-clean
// answers its requests in order. When qmail-clean is gone, done is called
// with false at once.
func (s *Sender) cleanup(what string, done func(ok bool)) {
	if !s.cleanAlive {
		done(false)
		return
	}
	s.cleanOut = append(s.cleanOut, what...)
	s.cleanOut = append(s.cleanOut, 0)
	s.cleanWaiting = append(s.cleanWaiting, done)
	if !s.cleanBatching {
		s.flushClean()
	}
}

// flushOutput writes what the main loop has collected: the log lines,
// then the requests for qmail-clean.
func (s *Sender) flushOutput() {
	s.log.flush()
	s.flushClean()
}

// flushClean writes the requests for qmail-clean collected so far.
func (s *Sender) flushClean() {
	if len(s.cleanOut) == 0 || !s.cleanAlive {
		return
	}
	_, err := s.cfg.Clean.Write(s.cleanOut)
	s.cleanOut = s.cleanOut[:0]
	if err != nil {
		s.cleanDied()
	}
}

// cleaned hands qmail-clean's next answer to the request waiting for it.
func (s *Sender) cleaned(ok bool) {
	if len(s.cleanWaiting) == 0 {
		return
	}
	done := s.cleanWaiting[0]
	s.cleanWaiting = s.cleanWaiting[1:]
	done(ok)
}

// cleanDied fails every request still waiting: qmail-send must exit.
func (s *Sender) cleanDied() {
	if !s.cleanAlive {
		return
	}
	s.cleanAlive = false
	s.log.line("alert: oh no! lost qmail-clean connection! dying...")
	s.exitASAP = true
	waiting := s.cleanWaiting
	s.cleanWaiting, s.cleanOut = nil, nil
	for _, done := range waiting {
		done(false)
	}
}

// readCleanReplies turns qmail-clean's answers ('+' done, anything else
// failed) into events, all those that arrived together in one.
func (s *Sender) readCleanReplies() {
	buf := make([]byte, 512)
	for {
		n, err := s.cfg.CleanReplies.Read(buf)
		if n > 0 {
			s.events <- event{kind: evCleaned, replies: string(buf[:n])}
		}
		if err != nil {
			s.events <- event{kind: evCleanDied}
			return
		}
	}
}

// scanTodo starts preprocessing every message in todo/ that is not
// already under way, at most preprocessParallel at a time.
func (s *Sender) scanTodo() {
	s.lastTodo = s.now()
	s.nextTodo = s.lastTodo.Add(sleepTodo)
	// Names only: nothing is stat'ed, and the ids are sorted below.
	dir, err := fsutil.Open(filepath.Join(s.qdir, "todo"))
	if err != nil {
		s.log.line("warning: unable to opendir todo")
		return
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		s.log.line("warning: unable to opendir todo")
		return
	}
	var ids []uint64
	for _, name := range names {
		if id, ok := parseID(name); ok {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if s.exitASAP {
			return
		}
		if s.splitting[id] {
			continue
		}
		if len(s.splitting) >= preprocessParallel {
			s.todoBehind = true
			return
		}
		s.startSplit(id)
	}
}

func parseID(name string) (uint64, bool) {
	if name == "" || name[0] == '0' && len(name) > 1 {
		return 0, false
	}
	id, err := strconv.ParseUint(name, 10, 64)
	return id, err == nil
}
