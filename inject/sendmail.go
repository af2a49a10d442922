package inject

import (
	"fmt"
	"github.com/goqmail/goqmail/internal/getopt"
	"io"
	"strings"
)

// Sendmail is one run of the sendmail front end (netqmail's sendmail.c).
// It never returns on success: it ends by running, in the qmail home,
// bin/qmail-inject, bin/qmail-qread (-bp, or invoked as mailq) or
// bin/qmail-smtpd (-bs) through Exec.
type Sendmail struct {
	Args    []string // argv, argv[0] included
	Environ []string // the environment, "NAME=value" strings
	Home    string
	Stderr  io.Writer
	Chdir   func(dir string) error
	// Exec replaces the process; it returns only on failure. The path is
	// relative to the qmail home, where sendmail has moved.
	Exec func(path string, argv, env []string) error
}

const sendmailUsage = "sendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]\n"

// sendmailOpts are the options sendmail.c accepts, plus -r (the sender,
// as in other sendmails), which netqmail rejected.
const sendmailOpts = "vimte:f:p:o:B:F:EJxb:r:"

// RunSendmail is sendmail. It returns the exit code when it cannot
// hand over to another program.
func RunSendmail(s Sendmail) int {
	fail := func(code int, msg string) int {
		io.WriteString(s.Stderr, msg)
		return code
	}
	if err := s.Chdir(s.Home); err != nil {
		return fail(exitTemp, "sendmail: fatal: unable to switch to qmail home directory\n")
	}
	env := environ(append([]string(nil), s.Environ...))
	run := func(prog string, argv []string) int {
		s.Exec(prog, argv, env)
		name := prog[strings.LastIndexByte(prog, '/')+1:]
		return fail(exitTemp, fmt.Sprintf("sendmail: fatal: unable to run %s\n", name))
	}
	mailq := func() int { return run("bin/qmail-qread", []string{"bin/qmail-qread"}) }
	smtpd := func() int {
		if _, ok := env.get("PROTO"); !ok {
			// What tcpserver would set for a local connection, so that
			// qmail-smtpd accepts mail from this user for anywhere.
			env.set("RELAYCLIENT", "")
			env.set("DATABYTES", "0")
			env.set("PROTO", "TCP")
			env.set("TCPLOCALIP", "127.0.0.1")
			env.set("TCPLOCALHOST", "localhost")
			env.set("TCPREMOTEIP", "127.0.0.1")
			env.set("TCPREMOTEHOST", "localhost")
			env.set("TCPREMOTEINFO", "sendmail-bs")
		}
		return run("bin/qmail-smtpd", []string{"bin/qmail-smtpd"})
	}

	fromHeader := false
	sender, haveSender := "", false
	g := newGetopt(s.Args, sendmailOpts, s.Stderr)
	for {
		opt := g.Next()
		if opt == getopt.Done {
			break
		}
		switch opt {
		case 't':
			fromHeader = true
		case 'f', 'r':
			sender, haveSender = g.Arg(), true
		case 'F':
			env.set("MAILNAME", g.Arg())
		case 'E', 'J': // Sony NEWS-OS: an optional argument in the same word
			g.SkipWord()
		case 'B', 'p', 'v', 'i', 'x', 'm', 'e', 'o':
			// qmail has one delivery mode and one error mode; these
			// change nothing.
		case 'b':
			switch {
			case strings.HasPrefix(g.Arg(), "m"):
			case strings.HasPrefix(g.Arg(), "p"):
				return mailq()
			case strings.HasPrefix(g.Arg(), "s"):
				return smtpd()
			default:
				return fail(exitPerm, sendmailUsage)
			}
		default:
			return fail(exitPerm, sendmailUsage)
		}
	}
	switch g.Prog() {
	case "mailq":
		return mailq()
	case "newaliases":
		return fail(exitPerm, "sendmail: fatal: please use fastforward/newaliases instead\n")
	}
	argv := []string{"bin/qmail-inject", "-a"}
	if fromHeader {
		argv[1] = "-H"
	}
	if haveSender {
		argv = append(argv, "-f", sender)
		senderEnv(&env, sender)
	}
	argv = append(argv, "--")
	argv = append(argv, g.Rest()...)
	return run("bin/qmail-inject", argv)
}

// senderEnv makes the From field match the -f sender, as netqmail's
// do_sender does: QMAILUSER and QMAILHOST from the address, and no
// personal name (which also drops a -F name).
func senderEnv(env *environ, sender string) {
	for _, n := range []string{"QMAILNAME", "MAILNAME", "NAME", "QMAILHOST", "MAILHOST"} {
		env.unset(n)
	}
	at := strings.LastIndexByte(sender, '@')
	if at < 0 {
		env.set("QMAILUSER", sender)
		return
	}
	env.set("QMAILHOST", sender[at+1:])
	env.set("QMAILUSER", sender[:at])
}

// environ is an environment being prepared for exec.
type environ []string

func (e environ) get(name string) (string, bool) {
	for _, kv := range e {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func (e *environ) unset(name string) {
	out := (*e)[:0]
	for _, kv := range *e {
		if k, _, _ := strings.Cut(kv, "="); k != name {
			out = append(out, kv)
		}
	}
	*e = out
}

func (e *environ) set(name, value string) {
	e.unset(name)
	*e = append(*e, name+"="+value)
}
