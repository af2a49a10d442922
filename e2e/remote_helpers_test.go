package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/internal/testsend"
	"github.com/goqmail/goqmail/internal/testsmtp"
)

// This file holds what the remote-path tests share beyond internal/testsmtp
// and internal/testsend: peers on port 25 and the programs of a home.

// listenPort25 binds port 25 on an address of 127.25.0.0/16 that no one
// else uses: qmail-remote reaches mail exchangers on port 25 only, and
// all of 127/8 is loopback on Linux, so each test gets its own address.
func listenPort25(t *testing.T) net.Listener {
	t.Helper()
	var lastErr error
	for range 50 {
		ip := fmt.Sprintf("127.25.%d.%d", rand.IntN(256), 1+rand.IntN(254))
		ln, err := net.Listen("tcp", ip+":25")
		if err == nil {
			return ln
		}
		lastErr = err
	}
	t.Fatalf("no free 127.25.x.y:25: %v", lastErr)
	return nil
}

// unusedPort25 returns an address of 127.25.0.0/16 where nothing listens
// on port 25: a connection there is refused at once.
func unusedPort25(t *testing.T) string {
	t.Helper()
	ln := listenPort25(t)
	ip := ln.Addr().(*net.TCPAddr).IP.String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return ip
}

// peerDomain is the name the SMTP peer standing for a remote mail
// exchanger gives itself.
const peerDomain = "peer.e2e.test"

// startPeer serves SMTP on ln; configure, when not nil, sets the peer's
// behaviour before it serves.
func startPeer(t *testing.T, ln net.Listener, configure func(*testsmtp.Peer)) *testsmtp.Peer {
	t.Helper()
	return testsmtp.Start(t, ln, func(p *testsmtp.Peer) {
		p.Domain = peerDomain
		if configure != nil {
			configure(p)
		}
	})
}

// startLoopbackPeer serves SMTP on 127.0.0.1 with an ephemeral port, for
// routes that name a port.
func startLoopbackPeer(t *testing.T, configure func(*testsmtp.Peer)) *testsmtp.Peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startPeer(t, ln, configure)
}

// queuePrograms are the programs a home needs to queue a message and
// deliver it locally and remotely.
var queuePrograms = []string{"qmail-queue", "qmail-inject", "sendmail", "qmail-start", "qmail-send",
	"qmail-lspawn", "qmail-rspawn", "qmail-clean", "qmail-local", "qmail-remote"}

// inject runs qmail-inject or sendmail (prog) in home with msg on its
// input, as qmail's users do.
func inject(t *testing.T, home string, attr *syscall.SysProcAttr, msg, prog string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", prog), args...)
	cmd.Env = append(os.Environ(), "QMAILHOME="+home, "USER=alice")
	cmd.Stdin = strings.NewReader(msg)
	cmd.SysProcAttr = attr
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v: %s", prog, args, err, out)
	}
}

// startSendManager runs qmail-start in home, which becomes qmail-send.
func startSendManager(t *testing.T, home string, attr *syscall.SysProcAttr) *testsend.Manager {
	t.Helper()
	cmd := exec.Command(filepath.Join(home, "bin", "qmail-start"), "./Maildir/")
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	cmd.SysProcAttr = attr
	return testsend.Start(t, cmd, false)
}
