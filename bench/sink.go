package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// Sink is Postfix's smtp-sink on a loopback port: the relay workload's
// far end. It accepts and discards; with -c it prints running counters,
// from which Received takes the number of completed DATA commands.
type Sink struct {
	Port     int
	cmd      *exec.Cmd
	received atomic.Int64
	done     chan struct{}
}

// StartSink starts smtp-sink on a free port (as nobody when root, which
// smtp-sink insists on).
func StartSink(dir string) (*Sink, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-c"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	// A backlog of 256 as smtp-sink's manual suggests for load tests.
	args = append(args, "127.0.0.1:"+strconv.Itoa(port), "256")
	s := &Sink{Port: port, done: make(chan struct{})}
	s.cmd = exec.Command("smtp-sink", args...)
	s.cmd.Env = cleanEnv()
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "smtp-sink.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting smtp-sink (Debian package postfix): %w", err)
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4096), 4096)
		sc.Split(scanCRorLF)
		for sc.Scan() {
			if n, ok := ParseSinkCounters(sc.Bytes()); ok {
				s.received.Store(int64(n))
			}
		}
		// After an overlong line, keep draining so that smtp-sink never
		// blocks on its output.
		io.Copy(io.Discard, out)
	}()
	if err := waitSMTP(context.Background(), "127.0.0.1:"+strconv.Itoa(port), 10*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Received is the number of messages the sink has taken.
func (s *Sink) Received() int { return int(s.received.Load()) }

// Stop kills the sink.
func (s *Sink) Stop() {
	stopProcess(s.cmd, 5*time.Second)
	<-s.done
}

// scanCRorLF splits smtp-sink's output, which redraws its counter line
// with carriage returns.
func scanCRorLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// ParseSinkCounters takes mesg=N from a counter line of smtp-sink -c
// ("sess=3 quit=3 mesg=4").
func ParseSinkCounters(line []byte) (int, bool) {
	for _, f := range bytes.Fields(line) {
		v, ok := bytes.CutPrefix(f, []byte("mesg="))
		if !ok {
			continue
		}
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
