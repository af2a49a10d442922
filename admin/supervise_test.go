package admin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// recorder is the unit-test Runner: it records the commands.
type recorder struct {
	cmds []string
	out  string
}

func (r *recorder) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	r.cmds = append(r.cmds, name+" "+strings.Join(args, " "))
	return []byte(r.out), nil
}

func TestControlCommands(t *testing.T) {
	svc := t.TempDir()
	for _, d := range []string{"qmail-send/log", "qmail-smtpd/log", "qmail-submission/log"} {
		os.MkdirAll(filepath.Join(svc, d), 0o755)
	}
	home := t.TempDir()
	send, smtpd, sub := filepath.Join(svc, "qmail-send"), filepath.Join(svc, "qmail-smtpd"), filepath.Join(svc, "qmail-submission")
	tests := []struct {
		supervisor string
		action     func(*Control, context.Context) error
		want       []string
	}{
		{Daemontools, (*Control).Start, []string{"svc -u " + send + " " + send + "/log " + smtpd + " " + smtpd + "/log " + sub + " " + sub + "/log"}},
		{Daemontools, (*Control).Stop, []string{"svc -d " + smtpd + " " + smtpd + "/log " + sub + " " + sub + "/log " + send + " " + send + "/log"}},
		{Daemontools, (*Control).Restart, []string{"svc -d " + smtpd + " " + sub, "svc -t " + send, "svc -u " + smtpd + " " + sub}},
		{Daemontools, (*Control).Doqueue, []string{"svc -a " + send}},
		{Daemontools, (*Control).Reload, []string{"svc -h " + send}},
		{Daemontools, (*Control).Pause, []string{"svc -p " + send + " " + smtpd + " " + sub}},
		{Daemontools, (*Control).Cont, []string{"svc -c " + send + " " + smtpd + " " + sub}},
		{Daemontools, (*Control).Stat, []string{"svstat " + send + " " + send + "/log " + smtpd + " " + smtpd + "/log " + sub + " " + sub + "/log"}},
		{Runit, (*Control).Start, []string{"sv up " + send + " " + send + "/log " + smtpd + " " + smtpd + "/log " + sub + " " + sub + "/log"}},
		{Runit, (*Control).Restart, []string{"sv down " + smtpd + " " + sub, "sv term " + send, "sv up " + smtpd + " " + sub}},
		{Runit, (*Control).Doqueue, []string{"sv alarm " + send}},
		{Runit, (*Control).Reload, []string{"sv hup " + send}},
		{Runit, (*Control).Stat, []string{"sv status " + send + " " + send + "/log " + smtpd + " " + smtpd + "/log " + sub + " " + sub + "/log"}},
		{Systemd, (*Control).Start, []string{"systemctl list-unit-files --no-legend qmail-submission.service", "systemctl list-unit-files --no-legend qmail-smtps.service",
			"systemctl list-unit-files --no-legend qmail-pop3d.service", "systemctl list-unit-files --no-legend qmail-pop3s.service",
			"systemctl list-unit-files --no-legend qmail-qmtpd.service", "systemctl list-unit-files --no-legend qmail-qmqpd.service",
			"systemctl start qmail-send.service qmail-smtpd.service"}},
		{Systemd, (*Control).Doqueue, []string{"systemctl kill --kill-whom=main --signal=ALRM qmail-send.service"}},
		{Systemd, (*Control).Reload, []string{"systemctl kill --kill-whom=main --signal=HUP qmail-send.service"}},
	}
	for _, tt := range tests {
		r := &recorder{}
		var out bytes.Buffer
		c := &Control{Home: home, Supervisor: tt.supervisor, ServiceDir: svc, Run: r.run, Out: &out}
		err := tt.action(c, context.Background())
		if tt.action == nil || err != nil && !strings.Contains(err.Error(), "queue") {
			t.Errorf("%s: %v", tt.supervisor, err)
		}
		if !reflect.DeepEqual(r.cmds, tt.want) {
			t.Errorf("%s:\n%q\nwant\n%q", tt.supervisor, r.cmds, tt.want)
		}
	}
}

// The POP3, QMTP and QMQP services are started, stopped and shown with
// the SMTP ones when they are installed, and only then.
func TestControlReceivingServices(t *testing.T) {
	svc := t.TempDir()
	for _, d := range []string{"qmail-send/log", "qmail-smtpd/log", "qmail-pop3d/log", "qmail-qmtpd/log", "qmail-qmqpd/log"} {
		os.MkdirAll(filepath.Join(svc, d), 0o755)
	}
	dir := func(n string) string { return filepath.Join(svc, n) }
	withLogs := func(names ...string) string {
		var p []string
		for _, n := range names {
			p = append(p, dir(n), dir(n)+"/log")
		}
		return strings.Join(p, " ")
	}
	receiving := []string{"qmail-smtpd", "qmail-pop3d", "qmail-qmtpd", "qmail-qmqpd"}
	all := append([]string{"qmail-send"}, receiving...)
	tests := []struct {
		supervisor string
		action     func(*Control, context.Context) error
		want       []string
	}{
		{Daemontools, (*Control).Start, []string{"svc -u " + withLogs(all...)}},
		{Daemontools, (*Control).Stop, []string{"svc -d " + withLogs(append(receiving, "qmail-send")...)}},
		{Daemontools, (*Control).Stat, []string{"svstat " + withLogs(all...)}},
		{Runit, (*Control).Restart, []string{
			"sv down " + dir("qmail-smtpd") + " " + dir("qmail-pop3d") + " " + dir("qmail-qmtpd") + " " + dir("qmail-qmqpd"),
			"sv term " + dir("qmail-send"),
			"sv up " + dir("qmail-smtpd") + " " + dir("qmail-pop3d") + " " + dir("qmail-qmtpd") + " " + dir("qmail-qmqpd")}},
		{Runit, (*Control).Pause, []string{"sv pause " + dir("qmail-send") + " " + dir("qmail-smtpd") + " " + dir("qmail-pop3d") + " " + dir("qmail-qmtpd") + " " + dir("qmail-qmqpd")}},
	}
	for _, tt := range tests {
		r := &recorder{}
		c := &Control{Home: t.TempDir(), Supervisor: tt.supervisor, ServiceDir: svc, Run: r.run, Out: &bytes.Buffer{}}
		if err := tt.action(c, context.Background()); err != nil && !strings.Contains(err.Error(), "queue") {
			t.Errorf("%s: %v", tt.supervisor, err)
		}
		if !reflect.DeepEqual(r.cmds, tt.want) {
			t.Errorf("%s:\n%q\nwant\n%q", tt.supervisor, r.cmds, tt.want)
		}
	}

	// systemd: the units systemctl lists are the ones used.
	r := &recorder{out: "qmail-qmtpd.service enabled enabled\n"}
	c := &Control{Home: t.TempDir(), Supervisor: Systemd, Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
		out, err := r.run(ctx, name, args...)
		if args[0] == "list-unit-files" && args[2] != "qmail-qmtpd.service" {
			return nil, err
		}
		return out, err
	}, Out: &bytes.Buffer{}}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.cmds[len(r.cmds)-1], "systemctl stop qmail-smtpd.service qmail-qmtpd.service qmail-send.service"; got != want {
		t.Errorf("systemd stop: %q, want %q", got, want)
	}
}

func TestControlRefusesUnknownSupervisor(t *testing.T) {
	r := &recorder{}
	c := &Control{Home: t.TempDir(), ServiceDir: t.TempDir(), Run: r.run, Out: &bytes.Buffer{}}
	if err := c.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "--supervisor") {
		t.Errorf("Start without a supervisor: %v", err)
	}
	c.Supervisor = Daemontools
	if err := c.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "no qmail-send service") {
		t.Errorf("Start without services: %v", err)
	}
	if len(r.cmds) != 0 {
		t.Errorf("ran %q", r.cmds)
	}
}

func TestDetectSupervisor(t *testing.T) {
	dir := t.TempDir()
	sup := filepath.Join(dir, "qmail-send", "supervise")
	os.MkdirAll(sup, 0o755)
	os.WriteFile(filepath.Join(sup, "status"), make([]byte, 18), 0o644)
	if got := DetectSupervisor(dir); got != Daemontools {
		t.Errorf("supervise/status: %q", got)
	}
	os.WriteFile(filepath.Join(sup, "stat"), []byte("run\n"), 0o644)
	if got := DetectSupervisor(dir); got != Runit {
		t.Errorf("supervise/stat: %q", got)
	}
}

func TestWriteManPages(t *testing.T) {
	root := &cobra.Command{Use: "qmailctl", Short: "Manage goqmail"}
	root.PersistentFlags().String("home", "/var/qmail", "the qmail home")
	sub := &cobra.Command{Use: "queue", Short: "Show the queue", Long: "queue shows\n\n.the queue", Aliases: []string{"q"}, Run: func(*cobra.Command, []string) {}}
	sub.Flags().Bool("json", false, "print JSON")
	root.AddCommand(sub)
	dir := t.TempDir()
	if err := WriteManPages(root, dir, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "qmailctl-queue.8"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`.TH QMAILCTL\-QUEUE 8 "2026-01-02" goqmail "goqmail administration"`,
		".SH NAME\nqmailctl\\-queue \\- Show the queue\n",
		"queue shows\n.PP\n\\&.the queue\n",
		"Aliases: q.",
		".TP\n\\fB\\-\\-json\\fR\nprint JSON\n",
		".SH OPTIONS INHERITED FROM PARENT COMMANDS\n.TP\n\\fB\\-\\-home string\\fR\nthe qmail home (default: /var/qmail)\n",
		".SH SEE ALSO\nqmailctl(8)\n",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "qmailctl.8")); err != nil {
		t.Error(err)
	}
}

func TestLocateServices(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "qmail-send", "supervise"), 0o755)
	os.WriteFile(filepath.Join(dir, "qmail-send", "supervise", "stat"), []byte("run\n"), 0o644)
	tests := []struct {
		sup, dir         string
		wantSup, wantDir string
	}{
		{"", dir, Runit, dir},
		{Daemontools, dir, Daemontools, dir},
		{Systemd, "/nonexistent/x", Systemd, "/nonexistent/x"},
	}
	for _, tt := range tests {
		sup, d := LocateServices(tt.sup, tt.dir)
		if sup != tt.wantSup || d != tt.wantDir {
			t.Errorf("LocateServices(%q, %q) = %q, %q", tt.sup, tt.dir, sup, d)
		}
	}
	// Nothing given and nothing found: the runit default for runit.
	if _, d := LocateServices(Runit, ""); d != "/etc/service" && DetectSupervisor("/service") == "" {
		t.Errorf("runit default directory %q", d)
	}
}
