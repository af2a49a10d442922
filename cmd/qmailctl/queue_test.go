package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

func TestQueueCommand(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	// One message queued by the real qmail-queue, not yet preprocessed.
	envPath := filepath.Join(t.TempDir(), "envelope")
	os.WriteFile(envPath, []byte(queue.EncodeEnvelope("a@b.example", []string{"c@d.example"})), 0o600)
	env, err := os.Open(envPath)
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	qq := exec.Command(filepath.Join(home, "bin", "qmail-queue"))
	qq.Env = append(os.Environ(), "QMAILHOME="+home)
	qq.Stdin, qq.Stdout = strings.NewReader("Subject: x\n\nbody\n"), env
	var stderr strings.Builder
	qq.Stderr = &stderr
	if err := qq.Run(); err != nil {
		t.Fatalf("qmail-queue: %v %s", err, stderr.String())
	}
	qmailctl := func(args ...string) string {
		cmd := exec.Command(testenv.Program(t, "qmailctl"), append(args, "--home", home)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("qmailctl %v: %v", args, err)
		}
		return string(out)
	}
	if out := qmailctl("queue"); out != "messages in queue: 1\nmessages in queue but not yet preprocessed: 1\n" {
		t.Errorf("queue: %q", out)
	}
	var got struct {
		Messages       int               `json:"messages"`
		Unpreprocessed int               `json:"unpreprocessed"`
		Queue          []json.RawMessage `json:"queue"`
	}
	if err := json.Unmarshal([]byte(qmailctl("queue", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Messages != 1 || got.Unpreprocessed != 1 || got.Queue == nil || len(got.Queue) != 0 {
		t.Errorf("queue --json: %+v", got)
	}
}
