package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

func TestCompletionAndManPages(t *testing.T) {
	t.Parallel()
	qmailctl := testenv.Program(t, "qmailctl")
	out, err := exec.Command(qmailctl, "completion", "bash").Output()
	if err != nil || !strings.Contains(string(out), "__start_qmailctl") {
		t.Errorf("completion bash: %v\n%.200s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command(qmailctl, "man", dir).CombinedOutput(); err != nil {
		t.Fatalf("man: %v %s", err, out)
	}
	for _, cmd := range []string{"", "-start", "-stop", "-restart", "-stat", "-doqueue", "-queue", "-reload",
		"-pause", "-cont", "-cdb", "-check", "-init", "-services-install"} {
		page, err := os.ReadFile(filepath.Join(dir, "qmailctl"+cmd+".8"))
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.HasPrefix(string(page), ".TH QMAILCTL"+strings.ToUpper(strings.ReplaceAll(cmd, "-", "\\-"))+" 8 ") {
			t.Errorf("qmailctl%s.8 starts %.60q", cmd, page)
		}
	}
	// Life with qmail's aliases.
	for _, alias := range []string{"flush", "alrm", "hup"} {
		out, err := exec.Command(qmailctl, alias, "--help").Output()
		if err != nil || !strings.Contains(string(out), "Aliases:") {
			t.Errorf("%s --help: %v\n%s", alias, err, out)
		}
	}
	// An unknown subcommand fails, as the script's usage message does.
	if err := exec.Command(qmailctl, "frobnicate").Run(); err == nil {
		t.Error("qmailctl frobnicate succeeded")
	}
}
