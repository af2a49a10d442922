package queue_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

func TestProgram(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{nil, "/q/bin/qmail-queue"},
		{[]string{"QMAILQUEUE="}, "/q/bin/qmail-queue"},
		{[]string{"QMAILQUEUE=bin/other"}, "/q/bin/other"},
		{[]string{"QMAILQUEUE=/usr/bin/filter"}, "/usr/bin/filter"},
		{[]string{"QMAILQUEUE=bin/a", "PATH=/bin", "QMAILQUEUE=bin/b"}, "/q/bin/b"},
		{[]string{"XQMAILQUEUE=bin/x", "QMAILQUEUEX=bin/y"}, "/q/bin/qmail-queue"},
	}
	for _, tt := range tests {
		if got := queue.Program("/q", tt.env); got != tt.want {
			t.Errorf("Program(%q) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

// envQueue is a queue program that records its environment and the
// envelope it was given, then accepts the message.
const envQueue = `#!/bin/sh
env > "$QQ_OUT/env"
cat > /dev/null
cat <&1 > "$QQ_OUT/envelope"
exit 0
`

// TestOpenEnv: the queue program and its environment come from the env
// argument, not from the process environment.
func TestOpenEnv(t *testing.T) {
	home := testenv.NewHome(t)
	if err := os.WriteFile(filepath.Join(home, "bin", "env-queue"), []byte(envQueue), 0o755); err != nil {
		t.Fatal(err)
	}
	// The process's own QMAILQUEUE names a program that does not exist:
	// OpenEnv must not use it.
	t.Setenv("QMAILQUEUE", "bin/no-such-queue")
	out := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "QMAILQUEUE=bin/env-queue", "QQ_OUT=" + out, "RELAYCLIENT=", "TCPREMOTEIP=192.0.2.7"}
	c, err := queue.OpenEnv(home, env)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteString("Subject: x\n\nbody\n")
	if err := c.Close("a@example.org", []string{"b@example.net"}); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(out, "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nRELAYCLIENT=\n", "\nTCPREMOTEIP=192.0.2.7\n"} {
		if !strings.Contains("\n"+string(got), want) {
			t.Errorf("queue program environment lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "no-such-queue") {
		t.Errorf("the process environment leaked into the child:\n%s", got)
	}
	envelope, _ := os.ReadFile(filepath.Join(out, "envelope"))
	if string(envelope) != "Fa@example.org\x00Tb@example.net\x00\x00" {
		t.Errorf("envelope %q", envelope)
	}

	// Open is OpenEnv with the process environment: now the missing
	// program is the one run, and the caller gets qmail's exec failure.
	c, err = queue.Open(home)
	if err == nil {
		err = c.Close("a@example.org", []string{"b@example.net"})
	}
	if qerr, ok := err.(*queue.Error); !ok || qerr.ExitCode != 120 {
		t.Errorf("Open with QMAILQUEUE=bin/no-such-queue: %v, want exit 120", err)
	}
}
