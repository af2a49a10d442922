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

// readAnswer reads one answer: tag, exit code, flags, output.
func readAnswer(t *testing.T, c *net.UnixConn) (tag uint32, code, flags byte, out string) {
	t.Helper()
	b := make([]byte, answerHeader+MaxOutput+1)
	n, err := c.Read(b)
	if err != nil || n < answerHeader {
		t.Fatalf("answer %v, %v", b[:n], err)
	}
	return binary.LittleEndian.Uint32(b), b[tagSize], b[tagSize+1], string(b[answerHeader:n])
}

func readHello(t *testing.T, c *net.UnixConn) {
	t.Helper()
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != Hello {
		t.Fatalf("hello %q, %v", buf[:n], err)
	}
}

// The worker's side of a delivery: the arguments and the message
// arrive, the descriptor is closed, the answer carries the exit code and
// the output.
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
		if _, _, err := spawner.WriteMsgUnix(request(t, uint32(7+i), args), unix.UnixRights(int(msg.Fd())), nil); err != nil {
			t.Fatal(err)
		}
		msg.Close()
		tag, code, flags, out := readAnswer(t, spawner)
		if tag != uint32(7+i) || code != byte(101+i) || flags != 0 || out != "report for "+strings.Join(args, ",") {
			t.Errorf("request %d: answer tag %d, code %d, flags %d, output %q; want %d, %d, 0, the report", i, tag, code, flags, out, 7+i, 101+i)
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

// An answer carries the first MaxOutput bytes of the output, one more
// than any spawner keeps, so that the spawner still sees it was cut.
func TestServeOutputBound(t *testing.T) {
	spawner, w := connPair(t)
	done := serve(w, 1, func(r *Request) int {
		for i := 0; i < 3; i++ {
			io.WriteString(r.Out, strings.Repeat("x", MaxOutput/2))
		}
		return 0
	})
	readHello(t, spawner)
	sendRequest(t, spawner, 1, "big")
	if _, _, _, out := readAnswer(t, spawner); out != strings.Repeat("x", MaxOutput) {
		t.Errorf("output of %d bytes, want the first %d", len(out), MaxOutput)
	}
	spawner.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
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
		{"two descriptors", "TAG_a\x00", unix.UnixRights(fd, fd)},
		{"no tag", "TA", unix.UnixRights(fd)},
		{"unterminated", "TAG_a", unix.UnixRights(fd)},
		{"too many arguments", "TAG_" + strings.Repeat("\x00", maxArgs+1), unix.UnixRights(fd)},
		{"too long", "TAG_" + strings.Repeat("x", maxRequest+1) + "\x00", unix.UnixRights(fd)},
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
// /dev/null.
func sendRequest(t *testing.T, spawner *net.UnixConn, tag uint32, args ...string) {
	t.Helper()
	msg, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	if _, _, err := spawner.WriteMsgUnix(request(t, tag, args), unix.UnixRights(int(msg.Fd())), nil); err != nil {
		t.Fatal(err)
	}
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
	if tag, code, flags, _ := readAnswer(t, spawner); tag != 2 || code != 'b' || flags != 0 {
		t.Errorf("first answer: tag %d, code %d, flags %d; want 2, %d, 0", tag, code, flags, 'b')
	}
	close(release["a"])
	if tag, code, flags, _ := readAnswer(t, spawner); tag != 1 || code != 'a' || flags != 0 {
		t.Errorf("second answer: tag %d, code %d, flags %d; want 1, %d, 0", tag, code, flags, 'a')
	}
	spawner.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// An abandoned delivery is answered at once, with its output so far and
// the worker retiring: it takes no more requests, and it ends when the
// spawner closes its end, while the abandoned delivery is still stuck.
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
	sendRequest(t, spawner, 1, "slow")
	sendRequest(t, spawner, 2, "stuck")
	if tag, code, flags, out := readAnswer(t, spawner); tag != 2 || code != 111 || flags != flagRetiring || out != "timed out\n" {
		t.Errorf("abandoned delivery: tag %d, code %d, flags %d, output %q; want 2, 111, retiring, its output", tag, code, flags, out)
	}
	sendRequest(t, spawner, 3, "late")
	if tag, _, flags, out := readAnswer(t, spawner); tag != 3 || flags != flagNotTaken || out != "" {
		t.Errorf("request after the abandon: tag %d, flags %d, output %q; want 3, not taken", tag, flags, out)
	}
	close(releaseSlow)
	if tag, code, flags, out := readAnswer(t, spawner); tag != 1 || code != 3 || flags != flagRetiring || out != "" {
		t.Errorf("delivery under way: tag %d, code %d, flags %d, output %q; want 1, 3, retiring", tag, code, flags, out)
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
