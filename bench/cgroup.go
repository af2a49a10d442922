package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Group is a cgroup (v2) holding every process of one server: the CPU
// time of processes that have exited stays in its cpu.stat, so short
// lived ones (qmail-queue, qmail-local, sendmail) are counted, and
// daemons that detach (Postfix's master) cannot escape it.
type Group struct {
	dir string
	fd  *os.File
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted (the
// unified hierarchy of a hybrid system included).
func cgroup2Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	return parseCgroup2Mount(b)
}

// parseCgroup2Mount reads mountinfo(5): the mount point is field 5, the
// file system type follows the " - " separator.
func parseCgroup2Mount(mountinfo []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fields := strings.Fields(pre)
		fsType, _, _ := strings.Cut(post, " ")
		if fsType == "cgroup2" && len(fields) >= 5 {
			return unescapeMountPath(fields[4]), nil
		}
	}
	return "", errors.New("no cgroup2 file system mounted")
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// NewGroup creates an empty cgroup named name at the top of the cgroup v2
// hierarchy. It needs root (or a delegated hierarchy).
func NewGroup(name string) (*Group, error) {
	mnt, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(mnt, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup: %w", err)
	}
	fd, err := os.Open(dir)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("opening cgroup: %w", err)
	}
	return &Group{dir: dir, fd: fd}, nil
}

// Attr puts a process started with it into the group from its first
// instruction (clone3 CLONE_INTO_CGROUP).
func (g *Group) Attr(attr *syscall.SysProcAttr) *syscall.SysProcAttr {
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	attr.UseCgroupFD = true
	attr.CgroupFD = int(g.fd.Fd())
	return attr
}

// CPU is the CPU time used so far by all processes that ever ran in the
// group.
func (g *Group) CPU() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(g.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	return parseCPUStat(b)
}

// parseCPUStat takes usage_usec from a cgroup v2 cpu.stat file.
func parseCPUStat(b []byte) (time.Duration, error) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == "usage_usec" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 || n > int64(1<<62)/int64(time.Microsecond) {
				return 0, fmt.Errorf("cpu.stat: bad usage_usec %q", v)
			}
			return time.Duration(n) * time.Microsecond, nil
		}
	}
	return 0, errors.New("cpu.stat: no usage_usec")
}

// Pids lists the processes now in the group.
func (g *Group) Pids() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// Destroy kills whatever is left in the group, waits for it to empty and
// removes it.
func (g *Group) Destroy() error {
	defer g.fd.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := g.Pids()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: processes %v do not exit", g.dir, pids)
		}
		// cgroup.kill exists from Linux 5.14; before that, signal each.
		if err := os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0); err != nil {
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// An exited process keeps the group busy until it has been reaped
	// (orphans are reaped by init, a moment later).
	for {
		err := os.Remove(g.dir)
		if err == nil || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MemorySampler polls the resident set of the group's processes.
type MemorySampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	// peakPSS is the largest total proportional set size seen at one
	// sample (shared pages counted once over all processes, unlike a sum
	// of RSS); peakProc the largest peak RSS (VmHWM) of one process.
	peakPSS, peakProc int64
}

// pssEvery is how many samples apart the PSS is read: smaps_rollup walks
// every page table of the process, and the harness shares the machine
// with the servers it measures. The peak RSS (VmHWM) of a process is
// kept by the kernel and read at every sample.
const pssEvery = 5

// SampleMemory starts polling g every interval until Stop.
func SampleMemory(g *Group, interval time.Duration) *MemorySampler {
	m := &MemorySampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; ; i++ {
			m.sample(g, i%pssEvery == 0)
			select {
			case <-m.stop:
				// A last full sample: the servers are still up.
				m.sample(g, true)
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *MemorySampler) sample(g *Group, withPSS bool) {
	pids, err := g.Pids()
	if err != nil {
		return
	}
	var sum int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue // gone meanwhile
		}
		rss, hwm := parseProcStatus(b, "VmRSS"), parseProcStatus(b, "VmHWM")
		if withPSS {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p)); err == nil {
				sum += parseProcStatus(b, "Pss")
			}
		}
		m.mu.Lock()
		m.peakProc = max(m.peakProc, hwm, rss)
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.peakPSS = max(m.peakPSS, sum)
	m.mu.Unlock()
}

// Stop ends the sampling and returns the peaks in bytes.
func (m *MemorySampler) Stop() (peakPSS, peakProcessRSS int64) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peakPSS, m.peakProc
}

// parseProcStatus takes a "Name:   1234 kB" field of /proc/PID/status
// or smaps_rollup, in bytes; 0 for a missing or malformed field.
func parseProcStatus(b []byte, name string) int64 {
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		v, ok = strings.CutSuffix(strings.TrimSpace(v), " kB")
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0
		}
		return n * 1024
	}
	return 0
}
