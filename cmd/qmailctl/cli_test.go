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

// services install writes the POP3, QMTP and QMQP services its flags ask
// for, with their ports, rules and checkpassword.
func TestServicesInstallTCPServiceFlags(t *testing.T) {
	t.Parallel()
	qmailctl := testenv.Program(t, "qmailctl")
	home := testenv.NewHome(t)
	dir, logs := t.TempDir(), t.TempDir()
	out, err := exec.Command(qmailctl, "services", "install", "--home", home, "--dir", dir, "--for", "daemontools",
		"--log-dir", logs, "--run-as", "nobody", "--smtp-port", "0",
		"--pop3-port", "1110", "--pop3s-port", "1995", "--qmtp-port", "1209", "--qmqp-port", "1628",
		"--pop3-checkpassword", "/usr/sbin/checkpw", "--maildir", "./Mail/",
		"--pop3-rules-cdb", "/etc/p.cdb", "--qmtp-rules-cdb", "/etc/t.cdb", "--qmqp-rules-cdb", "/etc/q.cdb").CombinedOutput()
	if err != nil {
		t.Fatalf("services install: %v\n%s", err, out)
	}
	for name, wants := range map[string][]string{
		"qmail-pop3d": {"RULES=/etc/p.cdb", " 1110 ", "qmail-popup\" \"$LOCAL\" /usr/sbin/checkpw " + home + "/bin/qmail-pop3d ./Mail/"},
		"qmail-pop3s": {"RULES=/etc/p.cdb", " 1995 ", "POP3S=1"},
		"qmail-qmtpd": {"RULES=/etc/t.cdb", " 1209 ", "qmail-qmtpd\""},
		"qmail-qmqpd": {"RULES=/etc/q.cdb", " 1628 ", "qmail-qmqpd\""},
	} {
		run, err := os.ReadFile(filepath.Join(dir, name, "run"))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, want := range wants {
			if !strings.Contains(string(run), want) {
				t.Errorf("%s/run lacks %q:\n%s", name, want, run)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, name, "log", "run")); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "qmail-smtpd")); err == nil {
		t.Error("--smtp-port 0 wrote qmail-smtpd")
	}
	// A relative rules path is refused before anything is written.
	other := t.TempDir()
	out, err = exec.Command(qmailctl, "services", "install", "--home", home, "--dir", other, "--for", "daemontools",
		"--log-dir", logs, "--run-as", "nobody", "--qmqp-port", "628", "--qmqp-rules-cdb", "tcp.qmqp.cdb").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "absolute") {
		t.Errorf("relative QMQP rules: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 0 {
		t.Errorf("a refused install wrote %v", entries)
	}
}

// qmailctl cdb compiles the POP3, QMTP and QMQP rules named by its
// flags when their sources exist.
func TestCDBCompilesTCPServiceRules(t *testing.T) {
	t.Parallel()
	testenv.Tool(t, "tcprules", "ucspi-tcp")
	qmailctl := testenv.Program(t, "qmailctl")
	home, etc := testenv.NewHome(t), t.TempDir()
	path := func(name string) string { return filepath.Join(etc, name) }
	for _, name := range []string{"tcp.smtp", "tcp.pop3", "tcp.qmqp"} {
		if err := os.WriteFile(path(name), []byte("127.:allow\n:deny\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(qmailctl, "cdb", "--home", home,
		"--rules", path("tcp.smtp"), "--rules-cdb", path("smtp.cdb"),
		"--pop3-rules", path("tcp.pop3"), "--pop3-rules-cdb", path("pop3.cdb"),
		"--qmtp-rules", path("tcp.qmtp"), "--qmtp-rules-cdb", path("qmtp.cdb"),
		"--qmqp-rules", path("tcp.qmqp"), "--qmqp-rules-cdb", path("qmqp.cdb")).CombinedOutput()
	if err != nil {
		t.Fatalf("qmailctl cdb: %v\n%s", err, out)
	}
	want := "Reloaded " + path("smtp.cdb") + ".\nReloaded " + path("pop3.cdb") + ".\nReloaded " + path("qmqp.cdb") + ".\n"
	if string(out) != want {
		t.Errorf("qmailctl cdb said:\n%s\nwant:\n%s", out, want)
	}
	for _, name := range []string{"smtp.cdb", "pop3.cdb", "qmqp.cdb"} {
		if _, err := os.Stat(path(name)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(path("qmtp.cdb")); err == nil {
		t.Error("qmtp.cdb made without tcp.qmtp")
	}
}
