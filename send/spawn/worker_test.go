package spawn_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/send/spawn"
)

// lspawnSession is a running qmail-lspawn answering one request at a
// time.
type lspawnSession struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
}

func startLspawn(t *testing.T, home string) *lspawnSession {
	t.Helper()
	s := &lspawnSession{t: t}
	s.cmd = exec.Command(filepath.Join(home, "bin", "qmail-lspawn"), "./Maildir/")
	s.cmd.SysProcAttr = unprivileged(t, home)
	s.cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	s.cmd.Stderr = &s.stderr
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	s.out = bufio.NewReader(out)
	if conc, err := s.out.ReadByte(); err != nil || conc != spawn.MaxSlots {
		t.Fatalf("concurrency byte %d, %v", conc, err)
	}
	return s
}

// deliver asks for one delivery and waits for its report.
func (s *lspawnSession) deliver(slot byte, recipient string) string {
	s.t.Helper()
	if _, err := s.in.Write(spawn.AppendRequest(nil, slot, "5/28", "a@b", recipient)); err != nil {
		s.t.Fatal(err)
	}
	got, err := s.out.ReadByte()
	if err != nil {
		s.t.Fatalf("%s: %v (stderr %q)", recipient, err, s.stderr.String())
	}
	if got != slot {
		s.t.Fatalf("%s: report for slot %d, want %d", recipient, got, slot)
	}
	text, err := s.out.ReadString(0)
	if err != nil {
		s.t.Fatalf("%s: %v", recipient, err)
	}
	return text[:len(text)-1]
}

// finish closes qmail-lspawn's input: it ends, with its workers.
func (s *lspawnSession) finish() {
	s.t.Helper()
	s.in.Close()
	if rest, _ := io.ReadAll(s.out); len(rest) > 0 {
		s.t.Errorf("extra output %q", rest)
	}
	if err := s.cmd.Wait(); err != nil {
		s.t.Errorf("qmail-lspawn: %v", err)
	}
	if s.stderr.Len() > 0 {
		s.t.Errorf("qmail-lspawn said %q", s.stderr.String())
	}
}

// lspawnHome is a qmail home whose alias account has the .qmail files of
// the worker tests; bin/qmail-local is goqmail's, or a wrapper around it.
func lspawnHome(t *testing.T, wrapped bool) string {
	t.Helper()
	var home string
	if wrapped {
		home = testenv.NewHome(t, "qmail-lspawn")
		wrapper := "#!/bin/sh\nexec " + testenv.Program(t, "qmail-local") + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(home, "bin", "qmail-local"), []byte(wrapper), 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		home = testenv.NewHome(t, "qmail-lspawn", "qmail-local")
	}
	if err := os.WriteFile(filepath.Join(home, "queue", "mess", "5", "28"), []byte("Subject: x\n\nhi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(home, "alias")
	for _, d := range []string{"box", "box/tmp", "box/new", "box/cur"} {
		if err := os.Mkdir(filepath.Join(alias, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		".qmail-box":   "./box/\n",
		".qmail-prog":  "|echo \"$SENDER $RECIPIENT\"\n",
		".qmail-fail":  "|echo failing >&2; exit 111\n",
		".qmail-hard":  "|echo bad address; exit 100\n",
		".qmail-crash": "|kill -9 $PPID\n",
	} {
		if err := os.WriteFile(filepath.Join(alias, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// boxEntry is a file of alias/box/new: TIME.PID_SEQ.HOST.
type boxEntry struct {
	pid, seq int
}

var boxName = regexp.MustCompile(`^[0-9]+\.([0-9]+)(?:_([0-9]+))?\.[^/]+$`)

func boxNew(t *testing.T, home string) map[string]boxEntry {
	t.Helper()
	files, err := os.ReadDir(filepath.Join(home, "alias", "box", "new"))
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]boxEntry{}
	for _, f := range files {
		m := boxName.FindStringSubmatch(f.Name())
		if m == nil {
			t.Fatalf("maildir file name %q", f.Name())
		}
		e := boxEntry{seq: 1}
		e.pid, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			e.seq, _ = strconv.Atoi(m[2])
		}
		entries[f.Name()] = e
	}
	return entries
}

// qmail-lspawn with its qmail-local workers reports exactly what it
// reports running qmail-local once per delivery (a wrapper around
// qmail-local is never run as a worker), and a reported success is in
// the maildir.
func TestLspawnWorkersSameAsExec(t *testing.T) {
	t.Parallel()
	recipients := []string{"box", "prog", "box", "nosuch", "fail", "box", "hard", "crash", "box", "prog", "box"}
	want := map[string]string{
		"box":    "Kdid 1+0+0\n",
		"prog":   "Ka@b prog@testhost.example\ndid 0+0+1\n",
		"nosuch": "DSorry, no mailbox here by that name. (#5.1.1)\n",
		"fail":   "Zfailing\n",
		"hard":   "Dbad address\n",
		"crash":  "Zqmail-local crashed.\n",
	}
	for _, r := range []struct {
		name    string
		wrapped bool
		// Per delivery into box, which process made it (0 the
		// first seen, 1 the second...) and its sequence number:
		// the crash ends the first worker.
		boxes []boxEntry
	}{
		{"workers", false, []boxEntry{{0, 1}, {0, 2}, {0, 3}, {1, 1}, {1, 2}}},
		{"exec", true, []boxEntry{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}}},
	} {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			home := lspawnHome(t, r.wrapped)
			s := startLspawn(t, home)
			var order []string // box/new's files, as delivered
			for i, rcpt := range recipients {
				got := s.deliver(byte(i), rcpt+"@testhost.example")
				if got != want[rcpt] {
					t.Errorf("delivery %d to %s: %q, want %q", i, rcpt, got, want[rcpt])
				}
				if rcpt != "box" {
					continue
				}
				// Reported done: the message is in new/.
				files := boxNew(t, home)
				var added []string
				for name := range files {
					if !slices.Contains(order, name) {
						added = append(added, name)
					}
				}
				if len(added) != 1 {
					t.Fatalf("delivery %d reported %q; new files in box/new: %q", i, got, added)
				}
				order = append(order, added[0])
				if b, err := os.ReadFile(filepath.Join(home, "alias", "box", "new", added[0])); err != nil ||
					string(b) != "Return-Path: <a@b>\nDelivered-To: box@testhost.example\nSubject: x\n\nhi\n" {
					t.Errorf("%s: %q, %v", added[0], b, err)
				}
			}
			s.finish()
			files := boxNew(t, home)
			seen := map[int]int{} // pid: its rank
			var pids []int
			for i, name := range order {
				e := files[name]
				if _, ok := seen[e.pid]; !ok {
					seen[e.pid] = len(seen)
					pids = append(pids, e.pid)
				}
				if got := (boxEntry{seen[e.pid], e.seq}); got != r.boxes[i] {
					t.Errorf("box delivery %d: %s, process #%d sequence %d, want process #%d sequence %d",
						i, name, got.pid, got.seq, r.boxes[i].pid, r.boxes[i].seq)
				}
			}
			// qmail-lspawn has ended its workers before exiting.
			for _, pid := range pids {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("process %d is still there after qmail-lspawn exited", pid)
				}
			}
		})
	}
}
