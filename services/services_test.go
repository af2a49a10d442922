package services

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderEveryCombination(t *testing.T) {
	for _, sup := range []string{Daemontools, Runit, Systemd} {
		for _, mode := range []string{ModeTCPServer, ModeStandalone} {
			o := Defaults()
			o.Supervisor, o.SMTPMode = sup, mode
			o.SubmissionPort, o.SMTPSPort = 587, 465
			o.POP3Port, o.POP3SPort, o.QMTPPort, o.QMQPPort = 110, 995, 209, 628
			files, err := Render(o)
			if err != nil {
				t.Fatalf("%s/%s: %v", sup, mode, err)
			}
			if want := 8 * map[bool]int{true: 1, false: 2}[sup == Systemd]; len(files) != want {
				t.Errorf("%s/%s: %d files, want %d", sup, mode, len(files), want)
			}
			for name, b := range files {
				s := string(b)
				if strings.Contains(s, "<no value>") || strings.Contains(s, "{{") {
					t.Errorf("%s/%s %s: unfilled template:\n%s", sup, mode, name, s)
				}
				if sup == Systemd {
					continue
				}
				// Every run script must be valid sh.
				if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
					t.Errorf("%s/%s %s: sh -n: %v %s", sup, mode, name, err, out)
				}
			}
		}
	}
}

func TestRenderContents(t *testing.T) {
	o := Defaults()
	o.Home = "/opt/q"
	o.SubmissionPort, o.SMTPSPort = 587, 465
	files, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ file, want string }{
		{"qmail-send/run", `qmail-start "$(cat control/defaultdelivery)"`},
		{"qmail-send/run", "QMAILHOME=/opt/q\n"},
		{"qmail-send/log/run", "exec setuidgid qmaill multilog t /var/log/qmail\n"},
		{"qmail-smtpd/log/run", "multilog t /var/log/qmail/smtpd\n"},
		{"qmail-smtpd/run", "Refusing to start SMTP listener because it'll create an open relay"},
		{"qmail-smtpd/run", "-x \"$RULES\" -c \"$MAXSMTPD\""},
		{"qmail-smtpd/run", "0 25 \\\n\t\"$QMAILHOME/bin/qmail-smtpd\"\n"},
		{"qmail-submission/run", "SMTPAUTH=! \\"},
		{"qmail-submission/run", "0 587 \\\n\t\"$QMAILHOME/bin/qmail-smtpd\" /bin/checkpassword /bin/true\n"},
		{"qmail-smtps/run", "SMTPS=1 SMTPAUTH=!"},
		{"qmail-smtpd/run", "id -u qmaild"},
		{"qmail-smtpd/run", "getent group nofiles"},
	}
	for _, tt := range tests {
		if !strings.Contains(string(files[tt.file]), tt.want) {
			t.Errorf("%s lacks %q:\n%s", tt.file, tt.want, files[tt.file])
		}
	}
	if strings.Contains(string(files["qmail-smtpd/run"]), "checkpassword") {
		t.Error("port 25 offers AUTH")
	}
}

func TestRenderRunAs(t *testing.T) {
	o := Defaults()
	o.RunAs = "nobody"
	o.Supervisor = Runit
	o.SMTPMode = ModeStandalone
	files, err := Render(o)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"qmail-send/run":      "exec chpst -u nobody env - PATH=",
		"qmail-send/log/run":  "exec chpst -u nobody svlogd -t /var/log/qmail\n",
		"qmail-smtpd/run":     "--listen :25 -x",
		"qmail-smtpd/log/run": "svlogd -t /var/log/qmail/smtpd",
	} {
		if !strings.Contains(string(files[file]), want) {
			t.Errorf("%s lacks %q:\n%s", file, want, files[file])
		}
	}
}

func TestRenderRefusesUnsafeValues(t *testing.T) {
	bad := []func(*Options){
		func(o *Options) { o.Home = "/var/qmail; rm -rf /" },
		func(o *Options) { o.Home = "relative" },
		func(o *Options) { o.CheckPassword = "/bin/checkpassword $(id)" },
		func(o *Options) { o.Qmaild = "a b" },
		func(o *Options) { o.Host = "example.org" },
		func(o *Options) { o.Supervisor = "s6" },
		func(o *Options) { o.SMTPMode = "inetd" },
		func(o *Options) { o.SMTPPort = 70000 },
		func(o *Options) { o.LogDir = "/var/log/'q'" },
		func(o *Options) { o.POP3Port, o.POP3CheckPassword = 110, "/bin/checkpassword;id" },
		func(o *Options) { o.POP3SPort, o.Maildir = 995, "./Mail dir/" },
		func(o *Options) { o.POP3Port, o.POP3Rules = 110, "tcp.pop3.cdb" },
		func(o *Options) { o.QMQPPort, o.QMQPRules = 628, "" },
		func(o *Options) { o.QMTPPort, o.QMTPRules = 209, "/etc/tcp.qmtp.cdb`id`" },
		func(o *Options) { o.QMQPPort = -1 },
	}
	for i, f := range bad {
		o := Defaults()
		f(&o)
		if _, err := Render(o); err == nil {
			t.Errorf("case %d: Render accepted %+v", i, o)
		}
	}
}

func TestInstallDaemontools(t *testing.T) {
	home, dir, logs := t.TempDir(), t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(home, "control"), 0o755)
	o := Defaults()
	o.Home, o.Dir, o.LogDir, o.Down = home, dir, filepath.Join(logs, "qmail"), true
	o.RunAs = currentUser(t)
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"qmail-send/run", "qmail-send/log/run", "qmail-smtpd/run", "qmail-smtpd/down", "qmail-smtpd/log/down"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "qmail-send/run"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run mode: %v %v", fi, err)
	}
	for _, d := range []string{"qmail", "qmail/smtpd"} {
		if fi, err := os.Stat(filepath.Join(logs, d)); err != nil || !fi.IsDir() {
			t.Errorf("log dir %s: %v", d, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, "control/concurrencyincoming")); string(b) != "20\n" {
		t.Errorf("concurrencyincoming = %q", b)
	}
	if _, err := Install(o); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second Install: %v", err)
	}
	o.Force = true
	if _, err := Install(o); err != nil {
		t.Errorf("Install --force: %v", err)
	}
}

func TestInstallSystemd(t *testing.T) {
	home, dir := t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(home, "control"), 0o755)
	o := Defaults()
	o.Home, o.Dir, o.Supervisor, o.SMTPSPort = home, dir, Systemd, 465
	written, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 4 { // three units and concurrencyincoming
		t.Errorf("written: %v", written)
	}
	b, err := os.ReadFile(filepath.Join(dir, "qmail-smtps.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Environment=QMAILHOME=" + home + " SMTPS=1 SMTPAUTH=!", "AssertPathExists=" + home + "/control/rcpthosts", " 0 465 "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("qmail-smtps.service lacks %q:\n%s", want, b)
		}
	}
}

func currentUser(t *testing.T) string {
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestSystemdUnitsVerify has systemd check the units it would load.
func TestSystemdUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is missing: CI must install systemd")
		}
		t.Skip("systemd-analyze is not installed")
	}
	for _, mode := range []string{ModeTCPServer, ModeStandalone} {
		o := Defaults()
		o.Supervisor, o.SMTPMode = Systemd, mode
		o.SubmissionPort, o.SMTPSPort = 587, 465
		o.POP3Port, o.POP3SPort, o.QMTPPort, o.QMQPPort = 110, 995, 209, 628
		files, err := Render(o)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		var paths []string
		for name, b := range files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		out, err := exec.Command("systemd-analyze", append([]string{"verify"}, paths...)...).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("%s: systemd-analyze verify: %v\n%s", mode, err, out)
		}
	}
}
