package qmtp_test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// TestQMQPSourceLoad drives the standalone qmail-qmqpd with Postfix's
// qmqp-source, the load generator Debian ships for QMQP: 200 messages
// over 5 concurrent sessions must all reach the queue, each with its
// envelope.
func TestQMQPSourceLoad(t *testing.T) {
	t.Parallel()
	source := testenv.Tool(t, "qmqp-source", "postfix")
	server := testenv.NewHome(t, "qmail-qmqpd", "qmail-queue")
	l := startListener(t, server, "qmail-qmqpd", nil)
	const messages = 200
	addr := l.Addrs[0]
	out, err := exec.Command(source, "-s", "5", "-m", strconv.Itoa(messages), "-l", "2048",
		"-f", "load@client.example", "-t", "sink@far.example", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("qmqp-source: %v\n%s", err, out)
	}
	msgs := readQueue(t, server)
	if len(msgs) != messages {
		t.Fatalf("%d messages in the queue, want %d", len(msgs), messages)
	}
	for _, m := range msgs {
		if !strings.HasSuffix(m.todo, "Fload@client.example\x00Tsink@far.example\x00") {
			t.Fatalf("envelope %q", m.todo)
		}
		if !strings.Contains(m.mess, " with QMQP; ") {
			t.Fatalf("no QMQP Received line in %q", m.mess[:min(len(m.mess), 300)])
		}
	}
	if _, err := l.Stop(); err != nil {
		t.Errorf("exit after TERM: %v", err)
	}
}
