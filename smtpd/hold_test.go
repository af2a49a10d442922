package smtpd

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// holdConn is a scripted connection with tcpserver's Hold: it records
// whether the hold was taken while qmail-queue ran and what the client
// had been sent when it was released.
type holdConn struct {
	scriptConn
	held          bool
	holds         int
	sentAtRelease []string
}

func (c *holdConn) Hold() func() {
	c.held = true
	c.holds++
	return func() {
		c.held = false
		c.sentAtRelease = append(c.sentAtRelease, c.out.String())
	}
}

type holdCheckQueue struct {
	fakeQueue
	conn       *holdConn
	heldAtExit bool
}

func (q *holdCheckQueue) Close(from string, to []string) error {
	q.heldAtExit = q.conn.held
	return q.fakeQueue.Close(from, to)
}

// TestDataHoldsConnection: a stopping listener may close a connection
// only outside the span from qmail-queue's exit to the reply reaching
// the client; the session takes the hold before qmail-queue's status is
// known and releases it only after the 250 was written.
func TestDataHoldsConnection(t *testing.T) {
	for _, exit := range []int{0, 71} {
		cfg := &Config{Greeting: "g.example", Timeout: time.Minute,
			Env: Environ{RemoteIP: "192.0.2.9", RemoteHost: "unknown", Local: "l.example", IsRelayClient: true}}
		conn := &holdConn{}
		conn.in = strings.NewReader("MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n")
		s := NewSession(cfg, conn, &bytes.Buffer{})
		var q *holdCheckQueue
		s.OpenQueue = func() (Queue, error) {
			q = &holdCheckQueue{fakeQueue: fakeQueue{exit: exit}, conn: conn}
			return q, nil
		}
		s.Run()
		if q == nil || !q.heldAtExit {
			t.Errorf("exit %d: qmail-queue ran without the hold", exit)
		}
		if conn.holds != 1 || len(conn.sentAtRelease) != 1 {
			t.Fatalf("exit %d: %d holds, %d releases", exit, conn.holds, len(conn.sentAtRelease))
		}
		if exit != 0 {
			continue // nothing accepted: closing early loses nothing
		}
		want := "250 ok "
		sent := conn.sentAtRelease[0]
		lines := strings.Split(strings.TrimSuffix(sent, "\r\n"), "\r\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, want) {
			t.Errorf("exit %d: at release the client had %q, want the reply %q... written", exit, sent, want)
		}
	}
}
