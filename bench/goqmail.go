package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Names every server is configured with: a local domain with one Maildir
// user, and a relay domain routed to the sink.
const (
	LocalDomain = "bench.test"
	RelayDomain = "relay.test"
	LocalUser   = "user"
	Sender      = "bench@client.test"
)

// Server is one mail system under test, set up in its own directory.
type Server interface {
	Name() string
	// Start creates the server's files and starts its daemons in group.
	Start(ctx context.Context, g *Group) error
	// SMTPAddr is where it accepts mail ("" for no SMTP front end).
	SMTPAddr() string
	// Inject submits one message with the server's sendmail, in group.
	Inject(ctx context.Context, g *Group, rcpt string, msg []byte) error
	// MaildirNew is the local user's Maildir/new: each file in it is a
	// delivered message.
	MaildirNew() string
	// Stop stops the daemons; the group is destroyed by the caller.
	Stop()
}

// Goqmail is goqmail in an unprivileged temporary home: qmail-start
// ./Maildir/, and qmail-smtpd under tcpserver or as its own listener.
type Goqmail struct {
	Bin       string // directory of the built programs
	Dir       string // everything of this instance lives here
	Account   Account
	Listener  bool // qmail-smtpd --listen instead of tcpserver
	SMTP      bool // start an SMTP front end
	RelayPort int  // smtp-sink's port for RelayDomain

	port  int
	send  *exec.Cmd
	smtpd *exec.Cmd
}

func (q *Goqmail) home() string     { return filepath.Join(q.Dir, "qmail") }
func (q *Goqmail) userHome() string { return filepath.Join(q.Dir, "home") }

// Name is the report's name for this layout.
func (q *Goqmail) Name() string {
	switch {
	case !q.SMTP:
		return ServerGoqmail
	case q.Listener:
		return ServerGoqmailListener
	}
	return ServerGoqmailTCPServer
}

// SMTPAddr is the front end's address.
func (q *Goqmail) SMTPAddr() string {
	if !q.SMTP {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(q.port)
}

func (q *Goqmail) env() []string {
	return []string{"PATH=" + filepath.Join(q.home(), "bin") + ":/usr/bin:/bin", "QMAILHOME=" + q.home()}
}

// command runs a goqmail program as the account with a clean environment.
func (q *Goqmail) command(ctx context.Context, g *Group, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = q.env()
	cmd.Dir = q.home()
	cmd.SysProcAttr = q.Account.attr(g)
	return cmd
}

// Start sets up the home as docs/install.md does (qmailctl init
// --unprivileged), with the user in users/assign, then starts the queue
// manager and the SMTP front end.
func (q *Goqmail) Start(ctx context.Context, g *Group) error {
	if err := os.MkdirAll(q.Dir, 0o755); err != nil {
		return err
	}
	if err := q.Account.chownTree(q.Dir); err != nil {
		return err
	}
	bin := func(p string) string { return filepath.Join(q.Bin, p) }
	setup := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = q.env()
		cmd.Dir = q.Dir
		cmd.SysProcAttr = q.Account.attr(nil)
		return runQuiet(ctx, cmd)
	}
	if err := setup(bin("qmailctl"), "init", "--me", LocalDomain, "--unprivileged", "--programs", q.Bin); err != nil {
		return err
	}
	if err := setup("/bin/mkdir", "-p", q.userHome()); err != nil {
		return err
	}
	if err := setup(bin("maildirmake"), filepath.Join(q.userHome(), "Maildir")); err != nil {
		return err
	}
	control := map[string]string{
		"rcpthosts":  LocalDomain + "\n" + RelayDomain + "\n",
		"smtproutes": fmt.Sprintf("%s:127.0.0.1:%d\n", RelayDomain, q.RelayPort),
	}
	for name, content := range control {
		if err := q.writeFile(filepath.Join(q.home(), "control", name), content); err != nil {
			return err
		}
	}
	assign := fmt.Sprintf("=%s:nobody:%d:%d:%s:::\n.\n", LocalUser, q.Account.Uid, q.Account.Gid, q.userHome())
	if err := q.writeFile(filepath.Join(q.home(), "users", "assign"), assign); err != nil {
		return err
	}
	if err := setup(bin("qmail-newu")); err != nil {
		return err
	}

	q.send = q.command(context.Background(), g, filepath.Join(q.home(), "bin", "qmail-start"), "./Maildir/")
	if err := startLogged(q.send, filepath.Join(q.Dir, "qmail-send.log")); err != nil {
		return err
	}
	if !q.SMTP {
		return nil
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	q.port = port
	smtpd := filepath.Join(q.home(), "bin", "qmail-smtpd")
	if q.Listener {
		q.smtpd = q.command(context.Background(), g, smtpd, "--listen", q.SMTPAddr(), "-c", "40", "-l", LocalDomain)
	} else {
		tcpserver, err := exec.LookPath("tcpserver")
		if err != nil {
			return fmt.Errorf("tcpserver (Debian package ucspi-tcp): %w", err)
		}
		// As a qmail run script starts it: no DNS (-R -H -l), 40 sessions.
		q.smtpd = q.command(context.Background(), g, tcpserver, "-R", "-H", "-l", LocalDomain, "-c", "40",
			"127.0.0.1", strconv.Itoa(port), smtpd)
	}
	if err := startLogged(q.smtpd, filepath.Join(q.Dir, "qmail-smtpd.log")); err != nil {
		return err
	}
	return waitSMTP(ctx, q.SMTPAddr(), 15*time.Second)
}

func (q *Goqmail) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		return os.Chown(path, q.Account.Uid, q.Account.Gid)
	}
	return nil
}

// Inject runs goqmail's sendmail (qmail-inject, qmail-queue) once.
func (q *Goqmail) Inject(ctx context.Context, g *Group, rcpt string, msg []byte) error {
	cmd := q.command(ctx, g, filepath.Join(q.home(), "bin", "sendmail"), "-f", Sender, rcpt)
	cmd.Stdin = bytes.NewReader(msg)
	return runQuiet(ctx, cmd)
}

// MaildirNew implements Server.
func (q *Goqmail) MaildirNew() string {
	return filepath.Join(q.userHome(), "Maildir", "new")
}

// Stop ends the front end, then qmail-send (which waits for its
// deliveries and its helpers).
func (q *Goqmail) Stop() {
	stopProcess(q.smtpd, 10*time.Second)
	stopProcess(q.send, 30*time.Second)
}
