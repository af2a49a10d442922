package inject

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSendmail(t *testing.T) {
	smtpdEnv := []string{"RELAYCLIENT=", "DATABYTES=0", "PROTO=TCP", "TCPLOCALIP=127.0.0.1", "TCPLOCALHOST=localhost",
		"TCPREMOTEIP=127.0.0.1", "TCPREMOTEHOST=localhost", "TCPREMOTEINFO=sendmail-bs"}
	for _, tc := range []struct {
		name    string
		args    []string
		env     []string
		path    string   // program run, "" for none
		argv    []string // its argv
		hasEnv  []string // in its environment
		lacks   []string // variable names not in its environment
		code    int
		stderr  string
		execErr bool
	}{
		{name: "plain", args: []string{"sendmail", "a@b", "c"}, path: "bin/qmail-inject",
			argv: []string{"bin/qmail-inject", "-a", "--", "a@b", "c"}},
		{name: "-t", args: []string{"sendmail", "-t"}, path: "bin/qmail-inject",
			argv: []string{"bin/qmail-inject", "-H", "--"}},
		{name: "-t with args", args: []string{"sendmail", "-t", "x"}, path: "bin/qmail-inject",
			argv: []string{"bin/qmail-inject", "-H", "--", "x"}},
		{name: "ignored options", args: []string{"sendmail", "-i", "-oi", "-v", "-x", "-m", "-e", "q", "-oem", "-B8BITMIME", "-p", "smtp:h", "-Efoo", "-J", "-bm", "r"},
			path: "bin/qmail-inject", argv: []string{"bin/qmail-inject", "-a", "--", "r"}},
		{name: "-f with host", args: []string{"sendmail", "-f", "joe@example.com", "r"},
			env:  []string{"NAME=n", "MAILNAME=m", "QMAILNAME=q", "MAILHOST=mh", "QMAILUSER=old", "OTHER=kept"},
			path: "bin/qmail-inject", argv: []string{"bin/qmail-inject", "-a", "-f", "joe@example.com", "--", "r"},
			hasEnv: []string{"QMAILUSER=joe", "QMAILHOST=example.com", "OTHER=kept"},
			lacks:  []string{"NAME", "MAILNAME", "QMAILNAME", "MAILHOST"}},
		{name: "-f without host", args: []string{"sendmail", "-fjoe", "r"}, env: []string{"QMAILHOST=h"},
			path: "bin/qmail-inject", argv: []string{"bin/qmail-inject", "-a", "-f", "joe", "--", "r"},
			hasEnv: []string{"QMAILUSER=joe"}, lacks: []string{"QMAILHOST"}},
		{name: "-r is -f", args: []string{"sendmail", "-r", "a@b", "r"},
			path: "bin/qmail-inject", argv: []string{"bin/qmail-inject", "-a", "-f", "a@b", "--", "r"},
			hasEnv: []string{"QMAILUSER=a", "QMAILHOST=b"}},
		{name: "-F", args: []string{"sendmail", "-F", "Joe User", "r"}, env: []string{"MAILNAME=old"},
			path: "bin/qmail-inject", argv: []string{"bin/qmail-inject", "-a", "--", "r"},
			hasEnv: []string{"MAILNAME=Joe User"}},
		{name: "-F dropped by -f as in netqmail", args: []string{"sendmail", "-F", "Joe", "-f", "a@b", "r"},
			path: "bin/qmail-inject", argv: []string{"bin/qmail-inject", "-a", "-f", "a@b", "--", "r"},
			lacks: []string{"MAILNAME"}},
		{name: "recipient looking like an option", args: []string{"sendmail", "--", "-t"},
			path: "bin/qmail-inject", argv: []string{"bin/qmail-inject", "-a", "--", "-t"}},
		{name: "-bp", args: []string{"sendmail", "-bp"}, path: "bin/qmail-qread", argv: []string{"bin/qmail-qread"}},
		{name: "mailq", args: []string{"/usr/bin/mailq", "-v"}, path: "bin/qmail-qread", argv: []string{"bin/qmail-qread"}},
		{name: "-bs", args: []string{"sendmail", "-bs"}, path: "bin/qmail-smtpd", argv: []string{"bin/qmail-smtpd"},
			hasEnv: smtpdEnv},
		{name: "-bs under tcpserver", args: []string{"sendmail", "-bs"}, env: []string{"PROTO=TCP", "TCPREMOTEIP=10.0.0.1"},
			path: "bin/qmail-smtpd", argv: []string{"bin/qmail-smtpd"}, hasEnv: []string{"TCPREMOTEIP=10.0.0.1"},
			lacks: []string{"RELAYCLIENT", "DATABYTES"}},
		{name: "newaliases", args: []string{"/usr/bin/newaliases"}, code: 100,
			stderr: "sendmail: fatal: please use fastforward/newaliases instead\n"},
		{name: "unknown option", args: []string{"sendmail", "-q"}, code: 100,
			stderr: "sendmail: illegal option -- q\n" + sendmailUsage},
		{name: "missing argument", args: []string{"sendmail", "-f"}, code: 100,
			stderr: "sendmail: option requires an argument -- f\n" + sendmailUsage},
		{name: "bad -b", args: []string{"sendmail", "-bd"}, code: 100, stderr: sendmailUsage},
		{name: "exec failure", args: []string{"sendmail", "r"}, path: "bin/qmail-inject",
			argv: []string{"bin/qmail-inject", "-a", "--", "r"}, execErr: true, code: 111,
			stderr: "sendmail: fatal: unable to run qmail-inject\n"},
		{name: "exec failure -bs", args: []string{"sendmail", "-bs"}, path: "bin/qmail-smtpd",
			argv: []string{"bin/qmail-smtpd"}, hasEnv: smtpdEnv, execErr: true, code: 111,
			stderr: "sendmail: fatal: unable to run qmail-smtpd\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			var gotPath, dir string
			var gotArgv, gotEnv []string
			code := RunSendmail(Sendmail{
				Args:    tc.args,
				Environ: tc.env,
				Home:    "/var/qmail-test",
				Stderr:  &stderr,
				Chdir:   func(d string) error { dir = d; return nil },
				Exec: func(path string, argv, env []string) error {
					gotPath, gotArgv, gotEnv = path, argv, env
					if tc.execErr {
						return errors.New("exec failed")
					}
					// The real exec does not return; stand in for the
					// program's exit status.
					return nil
				},
			})
			if dir != "/var/qmail-test" {
				t.Errorf("chdir %q", dir)
			}
			if gotPath != tc.path || !slices.Equal(gotArgv, tc.argv) {
				t.Errorf("ran %q %q, want %q %q", gotPath, gotArgv, tc.path, tc.argv)
			}
			for _, kv := range tc.hasEnv {
				if !slices.Contains(gotEnv, kv) {
					t.Errorf("environment %q lacks %q", gotEnv, kv)
				}
			}
			for _, name := range tc.lacks {
				for _, kv := range gotEnv {
					if strings.HasPrefix(kv, name+"=") {
						t.Errorf("environment has %q", kv)
					}
				}
			}
			if tc.path == "" || tc.execErr {
				if code != tc.code || stderr.String() != tc.stderr {
					t.Errorf("exit %d %q, want %d %q", code, stderr.String(), tc.code, tc.stderr)
				}
			}
		})
	}
}

func TestSendmailNoHome(t *testing.T) {
	var stderr bytes.Buffer
	code := RunSendmail(Sendmail{
		Args:   []string{"sendmail", "r"},
		Home:   "/nonexistent",
		Stderr: &stderr,
		Chdir:  func(string) error { return errors.New("no such directory") },
		Exec:   func(string, []string, []string) error { t.Fatal("exec without a home"); return nil },
	})
	if code != 111 || stderr.String() != "sendmail: fatal: unable to switch to qmail home directory\n" {
		t.Errorf("got %d %q", code, stderr.String())
	}
}
