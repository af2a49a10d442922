package pop3

import (
	"bufio"
	"io"
	"net"
	"syscall"
	"testing"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func nonblocking(t *testing.T, c net.Conn) bool {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags uintptr
	raw.Control(func(fd uintptr) {
		flags, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	})
	return flags&syscall.O_NONBLOCK != 0
}

// TestExecCheckpasswordOnSocket: as in the standalone listener, the chain
// gets the socket itself on fd 0, 1 and 2, the auth data on fd 3 and the
// given environment; afterwards the socket is non-blocking again, so the
// server's deadlines keep working.
func TestExecCheckpasswordOnSocket(t *testing.T) {
	server, client := tcpPair(t)
	script := `read line; echo "got $line"; echo "mark $MARK"; echo "home ${QMAILHOME-unset}" >&2; tr '\0' '|' <&3; exit 3`
	login := ExecCheckpasswordEnv([]string{"/bin/sh", "-c", script}, []string{"MARK=per-connection", "PATH=/usr/bin:/bin"})
	if _, err := io.WriteString(client, "hello\n"); err != nil {
		t.Fatal(err)
	}
	res, err := login([]byte("bob\x00secret\x00<1.2@h>\x00"), server, nil)
	if err != nil || res != (LoginResult{ExitCode: 3}) {
		t.Fatalf("login: %+v %v", res, err)
	}
	if !nonblocking(t, server) {
		t.Error("the server's socket stayed blocking after the chain ran")
	}
	server.Close()
	out, err := io.ReadAll(bufio.NewReader(client))
	if err != nil {
		t.Fatal(err)
	}
	want := "got hello\nmark per-connection\nhome unset\nbob|secret|<1.2@h>|"
	if string(out) != want {
		t.Errorf("the client read %q, want %q", out, want)
	}
}

// TestExecCheckpasswordFailures: a program that cannot be started
// counts as qmail's child exiting 1, and a crash is reported as such.
func TestExecCheckpasswordFailures(t *testing.T) {
	server, _ := tcpPair(t)
	res, err := ExecCheckpasswordEnv([]string{"/nonexistent/checkpassword"}, nil)(nil, server, nil)
	if err != nil || res != (LoginResult{ExitCode: 1}) {
		t.Errorf("missing program: %+v %v", res, err)
	}
	res, err = ExecCheckpasswordEnv([]string{"/bin/sh", "-c", "kill -KILL $$"}, nil)(nil, server, nil)
	if err != nil || !res.Crashed {
		t.Errorf("killed chain: %+v %v", res, err)
	}
}
