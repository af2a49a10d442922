package worker

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

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
func serve(worker *net.UnixConn, deliver func(*Request) int) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Serve(worker, deliver) }()
	return done
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
	done := serve(w, func(r *Request) int {
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
		data, err := encodeArgs(args)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := spawner.WriteMsgUnix(data, unix.UnixRights(int(msg.Fd()), int(outW.Fd())), nil); err != nil {
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
		answer := make([]byte, 2)
		n, err := spawner.Read(answer)
		if err != nil || n != 1 || answer[0] != byte(101+i) {
			t.Errorf("request %d: answer %v, %v; want [%d]", i, answer[:n], err, 101+i)
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
		{"no descriptors", "a\x00", nil},
		{"one descriptor", "a\x00", unix.UnixRights(fd)},
		{"three descriptors", "a\x00", unix.UnixRights(fd, fd, fd)},
		{"unterminated", "a", unix.UnixRights(fd, fd)},
		{"too many arguments", strings.Repeat("\x00", maxArgs+1), unix.UnixRights(fd, fd)},
		{"too long", strings.Repeat("x", maxRequest+1) + "\x00", unix.UnixRights(fd, fd)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spawner, w := connPair(t)
			delivered := false
			done := serve(w, func(*Request) int { delivered = true; return 0 })
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
