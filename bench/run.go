package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goqmail/goqmail/internal/fsutil"
)

// Config is one benchmark run's parameters (see cmd/goqmail-bench).
type Config struct {
	Bin       string // goqmail's built programs
	WorkDir   string // temporary directory for every instance
	Messages  int    // per run
	Size      int    // message body bytes
	Sessions  int    // smtp-source -s, and the latency client's sessions
	Injectors int    // parallel sendmail calls
	Rounds    int
	Latency   int // messages timed by the latency client per SMTP run
	DiskTime  time.Duration
	Stall     time.Duration // a run fails when nothing is delivered for this long
	Workloads []string
	Servers   []string // only these servers (all when empty)
	Quick     bool
	Keep      bool // keep the instances' directories (logs) after each run
	Command   string
	Log       io.Writer // progress
}

type runner struct {
	cfg     Config
	account Account
	seq     int
	notes   map[string]bool
	report  *Report
	// spent are the directories of finished runs, removed at the end:
	// see removeAtEnd.
	spent []string
}

// removeAtEnd removes dir after the last run rather than now. ext4
// without a journal does not reuse an inode freed in the last minutes
// and walks past every such inode of a block group for each file it
// creates: removing a run's tens of thousands of files at once would
// make the next run, whichever server it measures, pay for them.
func (r *runner) removeAtEnd(dir string) {
	if !r.cfg.Keep {
		r.spent = append(r.spent, dir)
	}
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (r *runner) note(s string) {
	if !r.notes[s] {
		r.notes[s] = true
		r.report.Notes = append(r.report.Notes, s)
		r.logf("note: %s", s)
	}
}

// Benchmark measures every workload for Postfix and goqmail alternately,
// Rounds times, and returns the finished report.
func Benchmark(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	account, err := RunAccount()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	// The goqmail instances run as nobody and must reach their homes.
	if err := os.Chmod(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	// Each run's directory, and in it the server's queue and the
	// mailboxes, goes to a block group of its own, as /var/spool and
	// /home would on a server: on ext4 without a journal, files freed
	// by one run (or by a queue) in the group where another creates
	// files make each of its creations walk past them (removeAtEnd).
	fsutil.SpreadSubdirs(cfg.WorkDir)
	rep := &Report{
		Started: time.Now().UTC(), Command: cfg.Command, Quick: cfg.Quick,
		Messages: cfg.Messages, MessageSize: cfg.Size, Sessions: cfg.Sessions,
		Injectors: cfg.Injectors, Rounds: cfg.Rounds, Machine: describeMachine(cfg.WorkDir),
	}
	r := &runner{cfg: cfg, account: account, notes: map[string]bool{}, report: rep}
	defer func() {
		for _, dir := range r.spent {
			os.RemoveAll(dir)
		}
	}()
	if err := CheckFsyncEnvironment(rep.Machine.Disk); err != nil {
		return nil, err
	}
	rep.Fsync = []string{
		"environment: no libeatmydata in LD_PRELOAD; servers start with a clean environment",
		"filesystem " + rep.Machine.Disk.MountOptions + ": none of " + strings.Join(unsafeMountOptions, ", "),
		"postfix: postconf -n of the instance sets no *sync* parameter (queue files are always fsynced)",
		"goqmail: qmail-queue, qmail-local and qmail-send fsync unconditionally (no setting exists)",
	}
	if os.Geteuid() != 0 {
		r.note("not root: Postfix cannot be started; its runs fail")
	}

	r.logf("disk: fsync'd create+rename, 1 and 8 writers, %s each", cfg.DiskTime)
	rep.Machine.Disk.FsyncRenamePerSec = map[string]float64{}
	for _, w := range []int{1, 8} {
		dir := filepath.Join(cfg.WorkDir, fmt.Sprintf("disk-%d", w))
		rate, err := FsyncRenameRate(ctx, dir, w, cfg.DiskTime)
		r.removeAtEnd(dir)
		if err != nil {
			return nil, fmt.Errorf("disk test: %w", err)
		}
		rep.Machine.Disk.FsyncRenamePerSec[strconv.Itoa(w)] = rate
		r.logf("disk: %d writer(s): %.0f/s", w, rate)
	}

	for _, w := range cfg.Workloads {
		for round := 1; round <= cfg.Rounds; round++ {
			for _, mk := range r.servers(w) {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				run := r.runOne(ctx, w, round, mk)
				if run.Server == "" {
					continue // filtered out
				}
				rep.Runs = append(rep.Runs, run)
				if run.OK() {
					r.logf("%s %s round %d: %d msgs in %.2fs = %.0f msg/s", w, run.Server, round, run.Messages, run.Seconds, run.MsgsPerSec)
				} else {
					r.logf("%s %s round %d FAILED: %s", w, run.Server, round, run.Error)
				}
			}
		}
	}
	rep.Finish()
	return rep, nil
}

type serverMaker func(dir string, relayPort int) Server

// servers lists, in the order they alternate, the servers for workload w.
func (r *runner) servers(w string) []serverMaker {
	postfix := func(dir string, relayPort int) Server {
		return &Postfix{Dir: dir, Account: r.account, RelayPort: relayPort}
	}
	goqmail := func(smtp, listener bool) serverMaker {
		return func(dir string, relayPort int) Server {
			return &Goqmail{Bin: r.cfg.Bin, Dir: dir, Account: r.account, SMTP: smtp, Listener: listener, RelayPort: relayPort}
		}
	}
	if w == WorkloadInject {
		return []serverMaker{postfix, goqmail(false, false)}
	}
	return []serverMaker{postfix, goqmail(true, false), goqmail(true, true)}
}

func (r *runner) runOne(ctx context.Context, workload string, round int, mk serverMaker) (run Run) {
	cfg := r.cfg
	r.seq++
	dir := filepath.Join(cfg.WorkDir, fmt.Sprintf("%02d-%s-%d", r.seq, workload, round))
	run = Run{Workload: workload, Round: round, Messages: cfg.Messages}
	fail := func(err error) Run {
		run.Error = err.Error()
		return run
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	fsutil.SpreadSubdirs(dir)
	r.removeAtEnd(dir)

	relayPort := 0
	var sink *Sink
	if workload == WorkloadRelay {
		var err error
		if sink, err = StartSink(dir); err != nil {
			return fail(err)
		}
		defer sink.Stop()
		relayPort = sink.Port
	}
	srv := mk(dir, relayPort)
	if len(cfg.Servers) > 0 && !slices.Contains(cfg.Servers, srv.Name()) {
		return Run{}
	}
	run.Server = srv.Name()
	fail = func(err error) Run {
		run.Error = err.Error()
		if saved := r.saveLogs(dir, run); saved != "" {
			run.Error += " (logs in " + saved + ")"
		}
		return run
	}

	group, err := NewGroup(fmt.Sprintf("goqmail-bench.%d.%d", os.Getpid(), r.seq))
	if err != nil {
		r.note("no cgroup v2 to account the servers' CPU and memory: " + err.Error())
		group = nil
	} else {
		defer func() {
			if err := group.Destroy(); err != nil {
				r.logf("cleanup: %v", err)
			}
		}()
	}
	if err := srv.Start(ctx, group); err != nil {
		srv.Stop()
		return fail(fmt.Errorf("starting %s: %w", srv.Name(), err))
	}
	defer srv.Stop()

	var delivered func() (int, error)
	rcpt := LocalUser + "@" + LocalDomain
	if workload == WorkloadRelay {
		delivered = func() (int, error) { return sink.Received(), nil }
		rcpt = "someone@" + RelayDomain
	} else {
		counter, err := NewDirCounter(srv.MaildirNew())
		if err != nil {
			return fail(err)
		}
		defer counter.Close()
		delivered = func() (int, error) { return counter.Count(cfg.Messages) }
	}

	var cpu0 time.Duration
	var mem *MemorySampler
	if group != nil {
		cpu0, _ = group.CPU()
		mem = SampleMemory(group, 100*time.Millisecond)
	}
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	var loadErr error
	loadDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(loadDone)
		if workload == WorkloadInject {
			loadErr = r.inject(loadCtx, srv, group, rcpt)
		} else {
			loadErr = r.smtpSource(loadCtx, srv.SMTPAddr(), rcpt)
		}
	}()
	err = waitDelivered(ctx, delivered, cfg.Messages, cfg.Stall, loadDone, func() error { return loadErr })
	elapsed := time.Since(start)
	if group != nil {
		cpu1, cerr := group.CPU()
		peak, proc := mem.Stop()
		if cerr == nil {
			cpu := (cpu1 - cpu0).Seconds()
			run.CPUSeconds = &cpu
			per := cpu / float64(cfg.Messages) * 1000
			run.CPUPer1000 = &per
		}
		run.PeakPSSBytes, run.MaxProcessRSSBytes = peak, proc
	}
	if err != nil {
		cancelLoad()
		<-loadDone
		return fail(err)
	}
	<-loadDone
	if loadErr != nil {
		return fail(loadErr)
	}
	run.Seconds = elapsed.Seconds()
	run.MsgsPerSec = Rate(cfg.Messages, elapsed)

	if workload != WorkloadInject && cfg.Latency > 0 {
		lc := &LatencyClient{
			Addr: srv.SMTPAddr(), From: Sender, To: rcpt, Helo: "client.test",
			Message: TestMessage(Sender, rcpt, cfg.Size), Sessions: cfg.Sessions, Messages: cfg.Latency,
		}
		lat, err := lc.Run(ctx)
		if err != nil {
			return fail(fmt.Errorf("latency client: %w", err))
		}
		ms := DurationsMillis(lat)
		run.LatencyP50Ms, run.LatencyP99Ms = ptr(Percentile(ms, 50)), ptr(Percentile(ms, 99))
		run.LatencySamples = len(ms)
	}
	return run
}

// waitDelivered polls until want messages are delivered; it fails when
// the load generator fails, when nothing progresses for stall, or when
// more than want arrive (a duplicate delivery is a bug, not speed).
func waitDelivered(ctx context.Context, delivered func() (int, error), want int, stall time.Duration, loadDone <-chan struct{}, loadErr func() error) error {
	last, lastChange := -1, time.Now()
	for {
		n, err := delivered()
		if err != nil {
			return fmt.Errorf("counting deliveries: %w", err)
		}
		if n > want {
			return fmt.Errorf("%d deliveries for %d messages", n, want)
		}
		if n == want {
			return nil
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > stall {
			return fmt.Errorf("stalled: %d of %d delivered, none for %s", n, want, stall)
		}
		select {
		case <-loadDone:
			if err := loadErr(); err != nil {
				return err
			}
			// The load is all sent; keep waiting for the deliveries (a
			// nil channel is never ready).
			loadDone = nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// smtpSource runs Postfix's smtp-source against addr.
func (r *runner) smtpSource(ctx context.Context, addr, rcpt string) error {
	cmd := exec.CommandContext(ctx, "smtp-source",
		"-s", strconv.Itoa(r.cfg.Sessions), "-m", strconv.Itoa(r.cfg.Messages), "-l", strconv.Itoa(r.cfg.Size),
		"-f", Sender, "-t", rcpt, "-M", "client.test", addr)
	cmd.Env = cleanEnv()
	out := &cappedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("smtp-source: %w: %s", err, lastLines(out.String(), 5))
	}
	return nil
}

// inject makes cfg.Messages sendmail calls, cfg.Injectors at a time.
func (r *runner) inject(ctx context.Context, srv Server, g *Group, rcpt string) error {
	msg := bytes.ReplaceAll(TestMessage(Sender, rcpt, r.cfg.Size), []byte("\r\n"), []byte("\n"))
	jobs := make(chan struct{})
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range max(1, r.cfg.Injectors) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				if err := srv.Inject(ctx, g, rcpt, msg); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("sendmail: %w", err); cancel() })
				}
			}
		}()
	}
feed:
	for range r.cfg.Messages {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return nil
}

// saveLogs keeps a failed run's logs and a listing of its files (the
// queue's state) where the cleanup does not reach; it returns the
// directory, or "" when nothing could be saved.
func (r *runner) saveLogs(dir string, run Run) string {
	dst, err := os.MkdirTemp("", fmt.Sprintf("goqmail-bench-failed-%s-%s-%d-", run.Workload, run.Server, run.Round))
	if err != nil {
		return ""
	}
	var listing strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		// A Maildir or a full queue has thousands of files: count them.
		if fi.IsDir() {
			if n, err := CountDir(p); err == nil && n > 50 {
				fmt.Fprintf(&listing, "%s/ (%d entries)\n", rel, n)
				return filepath.SkipDir
			}
			return nil
		}
		fmt.Fprintf(&listing, "%s %d %s\n", rel, fi.Size(), fi.Mode())
		if strings.HasSuffix(p, ".log") || filepath.Base(p) == "maillog" {
			if b, err := os.ReadFile(p); err == nil {
				os.WriteFile(filepath.Join(dst, strings.ReplaceAll(rel, "/", "_")), b, 0o644)
			}
		}
		return nil
	})
	os.WriteFile(filepath.Join(dst, "files.txt"), []byte(listing.String()), 0o644)
	return dst
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func describeMachine(dir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Disk: DescribeDisk(dir)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("postconf", "-dh", "mail_version").Output(); err == nil {
		m.Postfix = strings.TrimSpace(string(out))
	}
	return m
}

// ErrNotRoot explains why Postfix's half needs root.
var ErrNotRoot = errors.New("make bench must run as root: Postfix's master and the cgroup accounting need it")
