package tcpserver

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServerGraceThenClose: after the grace period a stopping server
// closes an idle session's connection (so a restart does not wait for
// the session timeout), but not one held with Hold: that session still
// writes its reply after the forced close was decided, and only then is
// its connection closed.
func TestServerGraceThenClose(t *testing.T) {
	t.Parallel()
	logR, logW := io.Pipe()
	holding := make(chan struct{})
	commit := make(chan struct{})
	idleErr := make(chan error, 1)
	var mu sync.Mutex
	n := 0
	srv := &Server{Grace: time.Millisecond, Log: logW, Handler: func(conn net.Conn, env map[string]string) {
		mu.Lock()
		n++
		i := n
		mu.Unlock()
		if i == 1 {
			// Idle client: blocks in Read until the forced close.
			_, err := conn.Read(make([]byte, 1))
			idleErr <- err
			return
		}
		h, ok := conn.(Holder)
		if !ok {
			t.Errorf("connection %T has no Hold", conn)
			return
		}
		release := h.Hold()
		close(holding)
		<-commit
		io.WriteString(conn, "250 ok\r\n")
		release()
		conn.Read(make([]byte, 1)) // would wait for ever without the close
	}}
	addr, stop := startServer(t, srv)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// Make sure the idle connection is being served before the second.
	for {
		mu.Lock()
		m := n
		mu.Unlock()
		if m == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	<-holding
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	line, err := bufio.NewReader(logR).ReadString('\n')
	if err != nil || !strings.Contains(line, "over, closing 2 connections") {
		t.Fatalf("log %q %v", line, err)
	}
	go io.Copy(io.Discard, logR)
	if err := <-idleErr; err == nil {
		t.Error("idle session's read succeeded after the grace period")
	}
	close(commit)
	reply, err := io.ReadAll(busy)
	if string(reply) != "250 ok\r\n" {
		t.Errorf("held session's client got %q (%v)", reply, err)
	}
	<-stopped
	got, _ := io.ReadAll(idle)
	if len(got) != 0 {
		t.Errorf("idle client got %q", got)
	}
}

// TestServerSurvivesPanic: a handler that panics on one client's input
// ends that connection only; the server goes on serving others.
func TestServerSurvivesPanic(t *testing.T) {
	t.Parallel()
	var log strings.Builder
	var logMu sync.Mutex
	srv := &Server{Log: lockedWriter{&logMu, &log}, Handler: func(conn net.Conn, env map[string]string) {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		if line == "boom\n" {
			var m map[string]int
			m["x"]++ // a nil-map write: a runtime panic
		}
		io.WriteString(conn, "ok\n")
	}}
	addr, stop := startServer(t, srv)
	talk := func(say string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, say)
		b, _ := io.ReadAll(c)
		return string(b)
	}
	if got := talk("boom\n"); got != "" {
		t.Errorf("panicking session answered %q", got)
	}
	if got := talk("hello\n"); got != "ok\n" {
		t.Errorf("next session got %q", got)
	}
	stop()
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(log.String(), "panic serving 127.0.0.1: assignment to entry in nil map") {
		t.Errorf("log %q", log.String())
	}
}
