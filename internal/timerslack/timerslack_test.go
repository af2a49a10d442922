package timerslack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary is also the program under test: with helperEnv set it
// records each start in the file it names, calls Ensure and prints its
// arguments, the slack of each of its threads and whether the marker is
// still in its environment.
const helperEnv = "TIMERSLACK_TEST_STARTS"

func TestMain(m *testing.M) {
	if starts := os.Getenv(helperEnv); starts != "" {
		f, err := os.OpenFile(starts, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Fprintln(f, os.Getpid())
		f.Close()
		Ensure()
		time.Sleep(10 * time.Millisecond) // let the runtime start its threads
		fmt.Println("args", strings.Join(os.Args[1:], " "))
		comm, _ := os.ReadFile("/proc/self/comm")
		fmt.Println("comm", strings.TrimSpace(string(comm)))
		_, marked := os.LookupEnv(tried)
		fmt.Println("marker", marked)
		tids, _ := os.ReadDir("/proc/self/task")
		for _, t := range tids {
			b, err := os.ReadFile("/proc/" + t.Name() + "/timerslack_ns")
			if err != nil {
				fmt.Println("thread", t.Name(), err)
				continue
			}
			fmt.Println("thread", t.Name(), strings.TrimSpace(string(b)))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type helperRun struct {
	starts  int
	args    string
	comm    string
	marker  bool
	threads []string // slack of each thread, in ns, or an error
}

// runHelper runs the helper from a thread whose slack is parentSlack
// (0: this test's own) and parses what it says.
func runHelper(t *testing.T, parentSlack time.Duration) helperRun {
	t.Helper()
	startsFile := filepath.Join(t.TempDir(), "starts")
	cmd := exec.Command(os.Args[0], "-test.run=^$", "two words")
	cmd.Env = append(os.Environ(), helperEnv+"="+startsFile)
	type result struct {
		out []byte
		err error
	}
	done := make(chan result)
	go func() {
		if parentSlack > 0 {
			// The thread keeps this slack: it is locked and ends
			// with the goroutine.
			runtime.LockOSThread()
			if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(parentSlack), 0, 0, 0); err != nil {
				done <- result{nil, err}
				return
			}
		}
		out, err := cmd.Output()
		done <- result{out, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("helper: %v\n%s", r.err, r.out)
	}
	starts, err := os.ReadFile(startsFile)
	if err != nil {
		t.Fatal(err)
	}
	run := helperRun{starts: strings.Count(string(starts), "\n")}
	for _, line := range strings.Split(strings.TrimSpace(string(r.out)), "\n") {
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "args":
			run.args = rest
		case "comm":
			run.comm = rest
		case "marker":
			run.marker = rest == "true"
		case "thread":
			_, slack, _ := strings.Cut(rest, " ")
			run.threads = append(run.threads, slack)
		}
	}
	return run
}

func TestEnsure(t *testing.T) {
	if _, err := os.Stat("/proc/self/timerslack_ns"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no timer slack in /proc (Linux 4.6 or later): %v", err)
		}
		t.Skipf("no timer slack in /proc: %v", err)
	}
	want := strconv.FormatInt(int64(Slack), 10)
	tests := []struct {
		name        string
		parentSlack time.Duration
		starts      int
	}{
		// Started with the kernel's default slack: one more execution.
		{"default slack", 50 * time.Microsecond, 2},
		// Started by a daemon that has the slack: inherited, no
		// second execution.
		{"inherited", Slack, 1},
		{"larger inherited", 3 * Slack, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := runHelper(t, tt.parentSlack)
			if run.starts != tt.starts {
				t.Errorf("program started %d times, want %d", run.starts, tt.starts)
			}
			if run.args != "-test.run=^$ two words" {
				t.Errorf("arguments %q", run.args)
			}
			if run.marker {
				t.Error("marker left in the environment")
			}
			// The kernel's name of the process is still the
			// program's (at most 15 bytes of it).
			if want := filepath.Base(os.Args[0]); run.comm != want[:min(len(want), 15)] {
				t.Errorf("process named %q, want %q", run.comm, want)
			}
			if len(run.threads) < 2 {
				t.Fatalf("threads %v: want the runtime's threads too", run.threads)
			}
			wantThread := want
			if tt.parentSlack > Slack {
				wantThread = strconv.FormatInt(int64(tt.parentSlack), 10)
			}
			for _, got := range run.threads {
				if got != wantThread {
					t.Errorf("thread slacks %v, want all %s", run.threads, wantThread)
					break
				}
			}
		})
	}
}

// TestStart: a program started with Start inherits the slack.
func TestStart(t *testing.T) {
	if _, err := os.Stat("/proc/self/timerslack_ns"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no timer slack in /proc (Linux 4.6 or later): %v", err)
		}
		t.Skipf("no timer slack in /proc: %v", err)
	}
	cmd := exec.Command("/bin/cat", "/proc/self/timerslack_ns")
	var out strings.Builder
	cmd.Stdout = &out
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), strconv.FormatInt(int64(Slack), 10); got != want {
		t.Errorf("started program's slack %s, want %s", got, want)
	}
}
