package remote

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/send/spawn"
)

// waitLimit bounds a wait for something that must happen; it is a
// limit for a hang, not a timing assertion.
const waitLimit = 20 * time.Second

// rspawn is a running qmail-rspawn driven one delivery at a time, as
// qmail-send would with a single slot in use.
type rspawn struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startRspawn(t *testing.T, home string) *rspawn {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-rspawn"))
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &rspawn{cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	if _, err := r.out.ReadByte(); err != nil { // the concurrency byte
		t.Fatal(err)
	}
	return r
}

// send asks for a delivery without waiting for its report.
func (r *rspawn) send(t *testing.T, slot byte, messID, recipient string) {
	t.Helper()
	if _, err := r.in.Write(spawn.AppendRequest(nil, slot, messID, "f@testhost.example", recipient)); err != nil {
		t.Fatal(err)
	}
}

// report reads the next report, which must be for slot.
func (r *rspawn) report(t *testing.T, slot byte) string {
	t.Helper()
	got, err := r.out.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	text, err := r.out.ReadString(0)
	if err != nil {
		t.Fatal(err)
	}
	if got != slot {
		t.Fatalf("report for slot %d, want %d: %q", got, slot, text)
	}
	return strings.TrimSuffix(text, "\x00")
}

func (r *rspawn) deliver(t *testing.T, messID, recipient string) string {
	t.Helper()
	r.send(t, 0, messID, recipient)
	return r.report(t, 0)
}

// stop ends qmail-rspawn as qmail-send does, by closing its input, and
// waits for it (and so its workers) to exit.
func (r *rspawn) stop(t *testing.T) {
	t.Helper()
	r.in.Close()
	if rest, _ := io.ReadAll(r.out); len(rest) > 0 {
		t.Errorf("extra output %q", rest)
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("qmail-rspawn: %v", err)
	}
}

// workers are the pids of qmail-rspawn's "qmail-remote --worker"
// children.
func (r *rspawn) workers(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold anything, so
		// parse from its last ')'.
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(r.cmd.Process.Pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if string(cmdline) == "qmail-remote\x00--worker\x00" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stallListener accepts connections and never says anything.
func stallListener(t *testing.T) *countingListener {
	t.Helper()
	ln := listenCounting(t)
	go func() {
		for {
			if _, err := ln.Accept(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { ln.Close(); ln.hangUp() })
	return ln
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", waitLimit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// queueMessage puts a message into home's queue/mess and returns its id.
func queueMessage(t *testing.T, home, text string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(home, "queue", "mess", "5", "28"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return "5/28"
}

const acceptedSpawnReport = "K127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n"

// TestWorkerDeliveries runs deliveries through the real qmail-rspawn and
// its qmail-remote workers: several in a row in one worker on one SMTP
// connection, then a worker killed during a delivery, which is a crash
// of that delivery's qmail-remote, after which a new worker delivers.
func TestWorkerDeliveries(t *testing.T) {
	t.Parallel()
	p, ln := countingPeer(t, nil)
	stall := stallListener(t)
	home := testenv.NewHome(t, "qmail-rspawn", "qmail-remote")
	testenv.WriteControl(t, home, "smtproutes", fmt.Sprintf("dest.example:%s\nstall.example:[127.0.0.1]:%d\n",
		literalRoute(p), stall.Addr().(*net.TCPAddr).Port))
	mess := queueMessage(t, home, "Subject: x\n\nhi\n")
	rs := startRspawn(t, home)

	var worker int
	for i := range 3 {
		if got := rs.deliver(t, mess, "t@dest.example"); got != acceptedSpawnReport {
			t.Fatalf("delivery %d: %q, want %q", i, got, acceptedSpawnReport)
		}
		pids := rs.workers(t)
		if len(pids) != 1 || (worker != 0 && pids[0] != worker) {
			t.Fatalf("delivery %d: workers %v, want the same one (%d)", i, pids, worker)
		}
		worker = pids[0]
	}
	if got := ln.count(); got != 1 {
		t.Fatalf("3 deliveries in one worker used %d connections, want 1", got)
	}

	rs.send(t, 1, mess, "t@stall.example")
	waitFor(t, "the worker to connect", func() bool { return stall.count() == 1 })
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if got := rs.report(t, 1); got != "Zqmail-remote crashed.\n" {
		t.Fatalf("delivery in a killed worker: %q", got)
	}

	if got := rs.deliver(t, mess, "t@dest.example"); got != acceptedSpawnReport {
		t.Fatalf("delivery after the crash: %q, want %q", got, acceptedSpawnReport)
	}
	if pids := rs.workers(t); len(pids) != 1 || pids[0] == worker {
		t.Fatalf("workers after the crash %v, want one new one (not %d)", pids, worker)
	}
	if got := ln.count(); got != 2 {
		t.Fatalf("%d connections, want 2 (the killed worker's and the new one's)", got)
	}
	rs.stop(t)
	if got := len(p.Received()); got != 4 {
		t.Fatalf("peer got %d messages, want 4", got)
	}
	// The killed worker's connection just broke; the new worker's kept
	// one was ended with QUIT when qmail-rspawn ended its worker.
	if wire := p.Wire(); strings.Count(wire, "QUIT\r\n") != 1 || !strings.HasSuffix(wire, "\r\n.\r\nQUIT\r\n") {
		t.Fatalf("wire: %q", wire)
	}
}

// TestWorkerWrapperRunsPerDelivery: a program installed as
// bin/qmail-remote that is not goqmail's (a wrapper that signs mail and
// runs the real one, say) runs once per delivery, never bypassed by a
// worker.
func TestWorkerWrapperRunsPerDelivery(t *testing.T) {
	t.Parallel()
	p, ln := countingPeer(t, nil)
	home := testenv.NewHome(t, "qmail-rspawn")
	testenv.WriteControl(t, home, "smtproutes", "dest.example:"+literalRoute(p)+"\n")
	runs := filepath.Join(t.TempDir(), "runs")
	wrapper := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s\nexec %s \"$@\"\n", runs, testenv.Program(t, "qmail-remote"))
	if err := os.WriteFile(filepath.Join(home, "bin", "qmail-remote"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	mess := queueMessage(t, home, "Subject: x\n\nhi\n")
	rs := startRspawn(t, home)
	const n = 3
	for i := range n {
		if got := rs.deliver(t, mess, "t@dest.example"); got != acceptedSpawnReport {
			t.Fatalf("delivery %d: %q, want %q", i, got, acceptedSpawnReport)
		}
		if pids := rs.workers(t); len(pids) != 0 {
			t.Fatalf("delivery %d: workers %v started for a wrapper", i, pids)
		}
	}
	rs.stop(t)
	b, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("dest.example f@testhost.example t@dest.example\n", n); string(b) != want {
		t.Fatalf("the wrapper ran with %q, want %q", b, want)
	}
	if got := ln.count(); got != n {
		t.Fatalf("%d connections, want %d: one per qmail-remote", got, n)
	}
	if got := len(p.Received()); got != n {
		t.Fatalf("peer got %d messages, want %d", got, n)
	}
}
