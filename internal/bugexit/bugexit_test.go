package bugexit

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/queue"
)

// helperEnv names the way a re-executed test binary catches signals
// ("catch", "notify" or "none") before it sends itself one.
const helperEnv = "GOQMAIL_BUGEXIT_HELPER"

// TestMain turns the test binary into the helper process when helperEnv
// is set: it installs the handler as told, sends itself the signal named
// by its argument, and would exit 0 if it survived.
func TestMain(m *testing.M) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	sig := signalByName[os.Args[len(os.Args)-1]]
	sigs := []syscall.Signal{syscall.SIGILL, syscall.SIGABRT, syscall.SIGFPE, syscall.SIGBUS, syscall.SIGSYS}
	switch mode {
	case "catch":
		if err := Catch(sigs...); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(3)
		}
	case "notify":
		catchNotify(sigs)
	}
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		os.Exit(4)
	}
	// The signal is delivered to some thread; this one waits for it.
	time.Sleep(time.Minute)
	os.Exit(0)
}

var signalByName = map[string]syscall.Signal{
	"ILL": syscall.SIGILL, "ABRT": syscall.SIGABRT, "FPE": syscall.SIGFPE,
	"BUS": syscall.SIGBUS, "SYS": syscall.SIGSYS,
}

// runHelper re-executes the test binary in mode, sending itself sig, and
// returns its exit code (-1 when a signal killed it).
func runHelper(t *testing.T, mode, sig string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", sig)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("helper %s %s: %v", mode, sig, err)
	}
	return cmd.ProcessState.ExitCode()
}

func TestCatch(t *testing.T) {
	t.Parallel()
	for _, sig := range []string{"ILL", "ABRT", "FPE", "BUS", "SYS"} {
		for _, mode := range []string{"catch", "notify"} {
			t.Run(mode+"/"+sig, func(t *testing.T) {
				t.Parallel()
				if code := runHelper(t, mode, sig); code != Code {
					t.Errorf("exit %d after SIG%s, want %d", code, sig, Code)
				}
			})
		}
	}
}

// Without a handler the Go runtime ends the process otherwise (exit 2 or
// the signal itself): what the cases above would see if Catch did nothing.
func TestUncaught(t *testing.T) {
	t.Parallel()
	for _, sig := range []string{"ABRT", "SYS"} {
		if code := runHelper(t, "none", sig); code == Code {
			t.Errorf("exit %d after an uncaught SIG%s: the helper cannot tell Catch from nothing", code, sig)
		}
	}
}

func TestCodeIsQueueExitBug(t *testing.T) {
	if Code != queue.ExitBug {
		t.Errorf("Code = %d, queue.ExitBug = %d", Code, queue.ExitBug)
	}
}
