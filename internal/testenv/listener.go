package testenv

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Listener is a standalone server (qmail-smtpd, qmail-qmtpd,
// qmail-qmqpd, qmail-popup with --listen) started by a test.
type Listener struct {
	// Addrs are the addresses it reported, in the order of its --listen
	// options.
	Addrs []string
	Cmd   *exec.Cmd
	stop  func(os.Signal) (string, error)
}

// LoopbackListen returns the --listen options for an ephemeral port on
// 127.0.0.1 and, when this host has an IPv6 loopback, on ::1.
func LoopbackListen(t testing.TB) []string {
	t.Helper()
	args := []string{"--listen", "127.0.0.1:0"}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		args = append(args, "--listen", "[::1]:0")
	} else {
		t.Logf("no IPv6 loopback here: %v", err)
	}
	return args
}

// StartListener runs the program at path with args and exactly the
// environment env, and reads the "NAME: listening on ADDR" line it
// writes for each --listen in args (NAME is path's base name). The rest
// of its standard error is its log. When the test ends the listener is
// killed, and its log shown if the test failed.
func StartListener(t testing.TB, path string, args, env []string) *Listener {
	t.Helper()
	name := filepath.Base(path)
	cmd := exec.Command(path, args...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stderr)
	l := &Listener{Cmd: cmd}
	for _, a := range args {
		if a != "--listen" {
			continue
		}
		line, err := r.ReadString('\n')
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), name+": listening on ")
		if err != nil || !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s did not start: %v %q", name, err, line)
		}
		l.Addrs = append(l.Addrs, addr)
	}
	log := &strings.Builder{}
	done := make(chan struct{})
	go func() { io.Copy(log, r); close(done) }()
	var once sync.Once
	var waitErr error
	l.stop = func(sig os.Signal) (string, error) {
		once.Do(func() {
			cmd.Process.Signal(sig)
			// The log is read to its end before Wait, which closes
			// the pipe: lines written as the listener exits (its
			// last batch, internal/logbuf) would be lost. A child
			// left holding stderr does not hold the test for long.
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
			waitErr = cmd.Wait()
			<-done
		})
		return log.String(), waitErr
	}
	t.Cleanup(func() {
		if out, _ := l.stop(os.Kill); t.Failed() {
			t.Logf("%s log:\n%s", name, out)
		}
	})
	return l
}

// Stop sends TERM and returns the listener's log and exit status; later
// calls return the same.
func (l *Listener) Stop() (log string, err error) { return l.stop(syscall.SIGTERM) }

// FreePort returns a port of 127.0.0.1 nothing listens on at the moment,
// for programs that take a port number rather than port 0 (run scripts,
// tcpserver under a supervisor).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
