package qmtp

import (
	"strings"
	"testing"
)

// holdRecorder checks the span a stopping listener must not close: the
// hold is taken while qmail-queue's status is unknown and released only
// after the reply was written.
type holdRecorder struct {
	c          *conn
	held       bool
	heldAtExit []bool
	atRelease  []string
}

func (h *holdRecorder) hold() func() {
	h.held = true
	return func() {
		h.held = false
		h.atRelease = append(h.atRelease, h.c.String())
	}
}

type holdQueue struct {
	fakeQueue
	h *holdRecorder
}

func (q *holdQueue) Close(sender string, recipients []string) error {
	q.h.heldAtExit = append(q.h.heldAtExit, q.h.held)
	return q.fakeQueue.Close(sender, recipients)
}

func TestHoldSpansQueueAndReply(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		serve func(*conn, *Config) (int, error)
		want  []string
	}{
		{"QMTP two messages", qmtpMsg("\nbody\n", "s", "u@example.com") + qmtpMsg("\nbody\n", "s", "v@example.com"),
			func(c *conn, cfg *Config) (int, error) { return ServeQMTP(c, cfg) },
			[]string{okReply, okReply + okReply}},
		{"QMQP", qmqpReq("body\n", "s", "u@example.com"),
			func(c *conn, cfg *Config) (int, error) { return ServeQMQP(c, cfg) },
			[]string{okReply}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{in: strings.NewReader(tt.in)}
			h := &holdRecorder{c: c}
			cfg := testConfig(t, nil, nil)
			cfg.OpenQueue = func() (Queue, error) { return &holdQueue{h: h}, nil }
			cfg.Hold = h.hold
			if code, err := tt.serve(c, cfg); code != ExitOK {
				t.Fatalf("exit %d: %v", code, err)
			}
			for i, held := range h.heldAtExit {
				if !held {
					t.Errorf("message %d: qmail-queue ran without the hold", i+1)
				}
			}
			if strings.Join(h.atRelease, "|") != strings.Join(tt.want, "|") {
				t.Errorf("client had %q at the releases, want %q", h.atRelease, tt.want)
			}
		})
	}
}
