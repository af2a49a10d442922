package worker

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// connPair is a connected SOCK_SEQPACKET pair: the spawner's end and
// the worker's.
func connPair(t *testing.T) (spawner, worker *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { conns[i].Close() })
	}
	return conns[0], conns[1]
}

// serve runs Serve on the worker's end; its result arrives on the
// channel.
func serve(worker *net.UnixConn, limit int, deliver func(*Request) int) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Serve(worker, limit, deliver) }()
	return done
}

// request is a request's datagram: the tag, then the arguments.
func request(t *testing.T, tag uint32, args []string) []byte {
	t.Helper()
	data, err := encodeArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.LittleEndian.AppendUint32(nil, tag), data...)
}

// readAnswer reads one answer: tag, exit code, flags.
func readAnswer(t *testing.T, c *net.UnixConn) (tag uint32, code, flags byte) {
	t.Helper()
	b := make([]byte, answerSize+1)
	n, err := c.Read(b)
	if err != nil || n != answerSize {
		t.Fatalf("answer %v, %v", b[:n], err)
	}
	return binary.LittleEndian.Uint32(b), b[tagSize], b[tagSize+1]
}

func readHello(t *testing.T, c *net.UnixConn) {
	t.Helper()
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != Hello {
		t.Fatalf("hello %q, %v", buf[:n], err)
	}
}

// The worker's side of a delivery: the arguments and descriptors
// arrive, the output goes back through the descriptor, the descriptors
// are closed before the answer, the answer is the exit code.
func TestServe(t *testing.T) {
	spawner, w := connPair(t)
	type seen struct {
		args  []string
		stdin string
	}
	var got []seen
	done := serve(w, 1, func(r *Request) int {
		b, _ := io.ReadAll(r.Stdin)
		got = append(got, seen{r.Args, string(b)})
		io.WriteString(r.Out, "report for "+strings.Join(r.Args, ","))
		return 100 + len(got)
	})
	readHello(t, spawner)
	msgPath := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(msgPath, []byte("the message"), 0o600); err != nil {
		t.Fatal(err)
	}
	requests := [][]string{{"a", "", "b"}, {"--", "c"}}
	for i, args := range requests {
		msg, err := os.Open(msgPath)
		if err != nil {
			t.Fatal(err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := spawner.WriteMsgUnix(request(t, uint32(7+i), args), unix.UnixRights(int(msg.Fd()), int(outW.Fd())), nil); err != nil {
			t.Fatal(err)
		}
		msg.Close()
		outW.Close()
		// The end of file comes from the worker closing its copy.
		out, err := io.ReadAll(outR)
		outR.Close()
		if err != nil || string(out) != "report for "+strings.Join(args, ",") {
			t.Errorf("request %d: output %q, %v", i, out, err)
		}
		if tag, code, flags := readAnswer(t, spawner); tag != uint32(7+i) || code != byte(101+i) || flags != 0 {
			t.Errorf("request %d: answer tag %d, code %d, flags %d; want %d, %d, 0", i, tag, code, flags, 7+i, 101+i)
		}
	}
	spawner.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	want := []seen{{requests[0], "the message"}, {requests[1], "the message"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deliveries %q, want %q", got, want)
	}
}

// A request that is not one ends the worker without a delivery.
func TestServeMalformed(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	fd := int(devNull.Fd())
	tests := []struct {
		name   string
		data   string
		rights []byte
	}{
		{"no descriptors", "TAG_a\x00", nil},
		{"one descriptor", "TAG_a\x00", unix.UnixRights(fd)},
		{"three descriptors", "TAG_a\x00", unix.UnixRights(fd, fd, fd)},
		{"no tag", "TA", unix.UnixRights(fd, fd)},
		{"unterminated", "TAG_a", unix.UnixRights(fd, fd)},
		{"too many arguments", "TAG_" + strings.Repeat("\x00", maxArgs+1), unix.UnixRights(fd, fd)},
		{"too long", "TAG_" + strings.Repeat("x", maxRequest+1) + "\x00", unix.UnixRights(fd, fd)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spawner, w := connPair(t)
			delivered := false
			done := serve(w, 1, func(*Request) int { delivered = true; return 0 })
			readHello(t, spawner)
			if _, _, err := spawner.WriteMsgUnix([]byte(tt.data), tt.rights, nil); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err == nil {
				t.Errorf("Serve accepted it")
			}
			if delivered {
				t.Errorf("delivered")
			}
		})
	}
}

// sendRequest sends a request with tag and args whose message is
// /dev/null; it returns the read end of the request's output.
func sendRequest(t *testing.T, spawner *net.UnixConn, tag uint32, args ...string) *os.File {
	t.Helper()
	msg, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outW.Close()
	t.Cleanup(func() { outR.Close() })
	if _, _, err := spawner.WriteMsgUnix(request(t, tag, args), unix.UnixRights(int(msg.Fd()), int(outW.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	return outR
}

// Deliveries run side by side up to the limit, and each answer carries
// its request's tag, in the order the deliveries end.
func TestServeConcurrent(t *testing.T) {
	spawner, w := connPair(t)
	release := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	started := make(chan string, 2)
	done := serve(w, 2, func(r *Request) int {
		started <- r.Args[0]
		<-release[r.Args[0]]
		return int(r.Args[0][0])
	})
	readHello(t, spawner)
	sendRequest(t, spawner, 1, "a")
	sendRequest(t, spawner, 2, "b")
	// Both are under way before either ends.
	for i := 0; i < 2; i++ {
		select {
		case <-started:
		case <-time.After(time.Minute):
			t.Fatal("two deliveries were not under way at once")
		}
	}
	close(release["b"])
	if tag, code, flags := readAnswer(t, spawner); tag != 2 || code != 'b' || flags != 0 {
		t.Errorf("first answer: tag %d, code %d, flags %d; want 2, %d, 0", tag, code, flags, 'b')
	}
	close(release["a"])
	if tag, code, flags := readAnswer(t, spawner); tag != 1 || code != 'a' || flags != 0 {
		t.Errorf("second answer: tag %d, code %d, flags %d; want 1, %d, 0", tag, code, flags, 'a')
	}
	spawner.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// An abandoned delivery is answered at once, with its descriptors
// closed and the worker retiring: it takes no more requests, and it
// ends when the spawner closes its end, while the abandoned delivery is
// still stuck.
func TestServeAbandon(t *testing.T) {
	spawner, w := connPair(t)
	stuck, releaseSlow := make(chan struct{}), make(chan struct{})
	defer close(stuck)
	var runs sync.WaitGroup
	runs.Add(1)
	done := serve(w, 4, func(r *Request) int {
		switch r.Args[0] {
		case "stuck":
			io.WriteString(r.Out, "timed out\n")
			r.Abandon(111)
			<-stuck
			return 0
		case "slow":
			defer runs.Done()
			<-releaseSlow
			return 3
		}
		t.Errorf("request %q was run", r.Args[0])
		return 0
	})
	readHello(t, spawner)
	slowOut := sendRequest(t, spawner, 1, "slow")
	stuckOut := sendRequest(t, spawner, 2, "stuck")
	if out, err := io.ReadAll(stuckOut); err != nil || string(out) != "timed out\n" {
		t.Errorf("abandoned delivery's output %q, %v", out, err)
	}
	if tag, code, flags := readAnswer(t, spawner); tag != 2 || code != 111 || flags != flagRetiring {
		t.Errorf("abandoned delivery: tag %d, code %d, flags %d; want 2, 111, retiring", tag, code, flags)
	}
	lateOut := sendRequest(t, spawner, 3, "late")
	if out, err := io.ReadAll(lateOut); err != nil || len(out) != 0 {
		t.Errorf("request after the abandon: output %q, %v", out, err)
	}
	if tag, _, flags := readAnswer(t, spawner); tag != 3 || flags != flagNotTaken {
		t.Errorf("request after the abandon: tag %d, flags %d; want 3, not taken", tag, flags)
	}
	close(releaseSlow)
	if out, err := io.ReadAll(slowOut); err != nil || len(out) != 0 {
		t.Errorf("delivery under way: output %q, %v", out, err)
	}
	if tag, code, flags := readAnswer(t, spawner); tag != 1 || code != 3 || flags != flagRetiring {
		t.Errorf("delivery under way: tag %d, code %d, flags %d; want 1, 3, retiring", tag, code, flags)
	}
	spawner.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve did not return with a delivery abandoned")
	}
	runs.Wait()
}
