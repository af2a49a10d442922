package testdns

import (
	"net"
	"testing"

	mdns "github.com/miekg/dns"
)

// StartFake serves handler in the test process on 127.0.0.1 with an
// ephemeral port, over UDP and, when withTCP, over TCP on the same port
// number (a resolver retries a truncated answer there). It returns
// "127.0.0.1:port" once the servers accept queries; they stop when the
// test ends.
//
// The handler is the test's own script (zones, failures, lying or
// malformed answers), so it receives every message, even one the
// library would refuse by default (several questions, say): a handler
// that reads q.Question[0] relies on its client sending one question.
func StartFake(t testing.TB, handler mdns.Handler, withTCP bool) string {
	t.Helper()
	pc, ln := listenUDPAndTCP(t, withTCP)
	serve := func(srv *mdns.Server, conn interface{ Close() error }) {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		srv.MsgAcceptFunc = func(mdns.Header) mdns.MsgAcceptAction { return mdns.MsgAccept }
		go srv.ActivateAndServe()
		// Waiting for the start means no query is lost to a server not
		// yet reading, and Shutdown at cleanup finds it running.
		<-started
		t.Cleanup(func() {
			srv.Shutdown()
			// The library's serving goroutine closes the socket
			// after Shutdown returns: close it here, so that the
			// port is free when the test ends.
			conn.Close()
		})
	}
	serve(&mdns.Server{PacketConn: pc, Handler: handler}, pc)
	if ln != nil {
		serve(&mdns.Server{Listener: ln, Handler: handler}, ln)
	}
	return pc.LocalAddr().String()
}

// listenUDPAndTCP opens a UDP socket on 127.0.0.1 with an ephemeral port
// and, when withTCP, a TCP listener on the same port number. Another
// process may hold that number for TCP, so it tries a few ports. The
// caller owns (and closes) both.
func listenUDPAndTCP(t testing.TB, withTCP bool) (net.PacketConn, net.Listener) {
	t.Helper()
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listening on UDP: %v", err)
		}
		if !withTCP {
			return pc, nil
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		if try == 20 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
}
