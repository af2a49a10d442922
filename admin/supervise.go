package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Supervisors qmailctl drives.
const (
	Daemontools = "daemontools"
	Runit       = "runit"
	Systemd     = "systemd"
)

// Runner runs a supervisor's tool (svc, svstat, sv, systemctl) and
// returns what it printed. Tests run the real tools; the interface lets
// unit tests record the commands.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs programs found in $PATH.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Control drives the qmail services the way Life with qmail's qmailctl
// does, through daemontools, runit or systemd.
type Control struct {
	Home       string
	Supervisor string
	// ServiceDir holds the service directories (daemontools, runit):
	// ServiceDir/qmail-send, ServiceDir/qmail-smtpd and the other
	// receiving services installed, each with a log/.
	ServiceDir string
	Run        Runner
	Out        io.Writer
}

// receivingServices are the services that take connections (SMTP, then
// POP3, QMTP and QMQP, as services.Install names them), in the order
// they are stopped before qmail-send. Only the installed ones are used.
var receivingServices = []string{
	"qmail-smtpd", "qmail-submission", "qmail-smtps",
	"qmail-pop3d", "qmail-pop3s", "qmail-qmtpd", "qmail-qmqpd",
}

// DetectSupervisor says which supervisor runs the services in dir: runit
// when qmail-send's supervise/ has runsv's "stat" file, daemontools when
// it has supervise's "status" but no "stat"; otherwise systemd when it is
// the running init and has a qmail-send unit, else "" (unknown).
func DetectSupervisor(dir string) string {
	sup := filepath.Join(dir, "qmail-send", "supervise")
	if _, err := os.Stat(filepath.Join(sup, "stat")); err == nil {
		return Runit
	}
	if _, err := os.Stat(filepath.Join(sup, "status")); err == nil {
		return Daemontools
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		for _, d := range []string{"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"} {
			if _, err := os.Stat(filepath.Join(d, "qmail-send.service")); err == nil {
				return Systemd
			}
		}
	}
	return ""
}

// DefaultServiceDir is where a supervisor's service directories live:
// /service for daemontools (Life with qmail), /etc/service for runit.
func DefaultServiceDir(supervisor string) string {
	if supervisor == Runit {
		return "/etc/service"
	}
	return "/service"
}

// LocateServices completes a supervisor and service directory given
// (either may be ""): without a directory, the first of /service and
// /etc/service whose qmail-send shows a supervisor (the given one, if
// any); failing that the supervisor's default directory. Without a
// supervisor, the one DetectSupervisor finds there ("" if none).
func LocateServices(supervisor, dir string) (string, string) {
	if dir == "" {
		for _, d := range []string{"/service", "/etc/service"} {
			if sup := DetectSupervisor(d); sup != "" && (supervisor == "" || supervisor == sup) {
				dir = d
				break
			}
		}
	}
	if dir == "" {
		dir = DefaultServiceDir(supervisor)
	}
	if supervisor == "" {
		supervisor = DetectSupervisor(dir)
	}
	return supervisor, dir
}

// services returns qmail-send and the receiving services that exist, in
// the order given: receiving ones first when smtpFirst.
func (c *Control) services(smtpFirst bool) []string {
	var smtp []string
	for _, s := range receivingServices {
		if c.Supervisor == Systemd {
			if s == "qmail-smtpd" || c.unitExists(s) {
				smtp = append(smtp, s)
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(c.ServiceDir, s)); err == nil {
			smtp = append(smtp, s)
		}
	}
	if smtpFirst {
		return append(smtp, "qmail-send")
	}
	return append([]string{"qmail-send"}, smtp...)
}

func (c *Control) unitExists(name string) bool {
	out, err := c.Run(context.Background(), "systemctl", "list-unit-files", "--no-legend", name+".service")
	return err == nil && strings.Contains(string(out), name+".service")
}

// paths are the directories of services and their logs.
func (c *Control) paths(names ...string) []string {
	var p []string
	for _, n := range names {
		dir := filepath.Join(c.ServiceDir, n)
		p = append(p, dir)
		if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
			p = append(p, filepath.Join(dir, "log"))
		}
	}
	return p
}

func units(names []string) []string {
	u := make([]string, len(names))
	for i, n := range names {
		u[i] = n + ".service"
	}
	return u
}

// signal sends one of the supervisor's actions to services (with their
// logs for daemontools and runit). action is a daemontools svc letter:
// u d t a h p c.
func (c *Control) signal(ctx context.Context, action byte, withLogs bool, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	dirs := func() []string {
		if withLogs {
			return c.paths(names...)
		}
		var p []string
		for _, n := range names {
			p = append(p, filepath.Join(c.ServiceDir, n))
		}
		return p
	}
	switch c.Supervisor {
	case Daemontools:
		_, err := c.Run(ctx, "svc", append([]string{"-" + string(action)}, dirs()...)...)
		return err
	case Runit:
		verb := map[byte]string{'u': "up", 'd': "down", 't': "term", 'a': "alarm", 'h': "hup", 'p': "pause", 'c': "cont"}[action]
		_, err := c.Run(ctx, "sv", append([]string{verb}, dirs()...)...)
		return err
	case Systemd:
		var args []string
		switch action {
		case 'u':
			args = []string{"start"}
		case 'd':
			args = []string{"stop"}
		case 't':
			args = []string{"restart"}
		default:
			sig := map[byte]string{'a': "ALRM", 'h': "HUP", 'p': "STOP", 'c': "CONT"}[action]
			args = []string{"kill", "--kill-whom=main", "--signal=" + sig}
		}
		_, err := c.Run(ctx, "systemctl", append(args, units(names)...)...)
		return err
	}
	return fmt.Errorf("unknown supervisor %q: use --supervisor daemontools, runit or systemd", c.Supervisor)
}

func (c *Control) check() error {
	switch c.Supervisor {
	case Daemontools, Runit:
		if _, err := os.Stat(filepath.Join(c.ServiceDir, "qmail-send")); err != nil {
			return fmt.Errorf("no qmail-send service in %s (qmailctl services install, then link it there): %w", c.ServiceDir, err)
		}
	case Systemd:
	default:
		return fmt.Errorf("cannot tell which supervisor runs qmail in %s: use --supervisor daemontools, runit or systemd", c.ServiceDir)
	}
	return nil
}

// Start brings every service and its log up.
func (c *Control) Start(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, "Starting qmail")
	if err := c.signal(ctx, 'u', true, c.services(false)...); err != nil {
		return err
	}
	// Life with qmail's touch of the subsystem lock (Red Hat's rc).
	if fi, err := os.Stat("/var/lock/subsys"); err == nil && fi.IsDir() {
		if f, err := os.OpenFile("/var/lock/subsys/qmail", os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
	return nil
}

// Stop takes the SMTP services down first, so that nothing new arrives,
// then qmail-send, which finishes its deliveries before it exits.
func (c *Control) Stop(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, "Stopping qmail")
	if err := c.signal(ctx, 'd', true, c.services(true)...); err != nil {
		return err
	}
	if f := "/var/lock/subsys/qmail"; fileExists(f) {
		os.Remove(f)
	}
	return nil
}

// Restart takes the SMTP services down, has qmail-send exit (TERM: the
// supervisor starts it again), then brings the SMTP services back.
func (c *Control) Restart(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	smtp := c.services(true)
	smtp = smtp[:len(smtp)-1]
	fmt.Fprintln(c.Out, "Restarting qmail:")
	if c.Supervisor == Systemd {
		return c.signal(ctx, 't', false, append(smtp, "qmail-send")...)
	}
	fmt.Fprintln(c.Out, "* Stopping SMTP services.")
	if err := c.signal(ctx, 'd', false, smtp...); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, "* Sending qmail-send SIGTERM and restarting.")
	if err := c.signal(ctx, 't', false, "qmail-send"); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, "* Restarting SMTP services.")
	return c.signal(ctx, 'u', false, smtp...)
}

// Doqueue clears the remote timeout table (qmail-tcpok) and has
// qmail-send retry every message now (ALRM).
func (c *Control) Doqueue(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	tcpok := filepath.Join(c.Home, "bin", "qmail-tcpok")
	if fileExists(tcpok) {
		if _, err := c.Run(ctx, tcpok); err != nil {
			return err
		}
	}
	fmt.Fprintln(c.Out, "Sending ALRM signal to qmail-send.")
	return c.signal(ctx, 'a', false, "qmail-send")
}

// Reload has qmail-send re-read locals and virtualdomains (HUP).
func (c *Control) Reload(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, "Sending HUP signal to qmail-send.")
	return c.signal(ctx, 'h', false, "qmail-send")
}

// Pause stops qmail-send and the SMTP services (STOP); Cont resumes them.
func (c *Control) Pause(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	names := c.services(false)
	fmt.Fprintf(c.Out, "Pausing %s\n", strings.Join(names, ", "))
	return c.signal(ctx, 'p', false, names...)
}

// Cont resumes what Pause stopped.
func (c *Control) Cont(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	names := c.services(false)
	fmt.Fprintf(c.Out, "Continuing %s\n", strings.Join(names, ", "))
	return c.signal(ctx, 'c', false, names...)
}

// Stat prints the supervisor's view of every service and its log, then
// qmail-qstat's two lines.
func (c *Control) Stat(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	var out []byte
	var err error
	switch c.Supervisor {
	case Daemontools:
		out, err = c.Run(ctx, "svstat", c.paths(c.services(false)...)...)
	case Runit:
		out, err = c.Run(ctx, "sv", append([]string{"status"}, c.paths(c.services(false)...)...)...)
	case Systemd:
		out, err = c.Run(ctx, "systemctl", append([]string{"status", "--no-pager", "--lines=0"}, units(c.services(false))...)...)
		if err != nil && len(out) > 0 {
			err = nil // systemctl status exits 3 for a stopped unit
		}
	}
	c.Out.Write(out)
	if err != nil {
		return err
	}
	s, err := StatQueue(filepath.Join(c.Home, "queue"))
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return WriteQstat(c.Out, s)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// RulesOptions name the tcprules files of one service.
type RulesOptions struct {
	Source string // /etc/tcp.smtp
	CDB    string // /etc/tcp.smtp.cdb
	// Optional rules (POP3, QMTP, QMQP: services not every host runs)
	// are compiled only when their source exists, without a note when
	// it does not.
	Optional bool
}

// RebuildCDBs compiles each tcprules source with tcprules (atomically,
// through CDB.tmp) and makes the cdb world-readable, then runs the home's
// qmail-newmrh (when control/morercpthosts exists) and qmail-newu (when
// users/assign exists). A missing rules source is skipped, with a note
// unless it is Optional.
func RebuildCDBs(ctx context.Context, home string, rules []RulesOptions, out io.Writer) error {
	run := func(stdin io.Reader, name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdin = stdin
		cmd.Env = append(os.Environ(), "QMAILHOME="+home)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(b)))
		}
		return nil
	}
	for _, r := range rules {
		if err := compileRules(r, run, out); err != nil {
			return err
		}
	}
	if fileExists(filepath.Join(home, "control", "morercpthosts")) {
		if err := run(nil, filepath.Join(home, "bin", "qmail-newmrh")); err != nil {
			return err
		}
		fmt.Fprintln(out, "Rebuilt control/morercpthosts.cdb.")
	}
	if fileExists(filepath.Join(home, "users", "assign")) {
		if err := run(nil, filepath.Join(home, "bin", "qmail-newu")); err != nil {
			return err
		}
		fmt.Fprintln(out, "Rebuilt users/cdb.")
	}
	return nil
}

// compileRules runs tcprules on one source (see RebuildCDBs).
func compileRules(r RulesOptions, run func(io.Reader, string, ...string) error, out io.Writer) error {
	src, err := os.Open(r.Source)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !r.Optional {
			fmt.Fprintf(out, "%s does not exist: no rules to compile.\n", r.Source)
		}
		return nil
	case err != nil:
		return fmt.Errorf("rules: %w", err)
	}
	defer src.Close()
	if err := run(src, "tcprules", r.CDB, r.CDB+".tmp"); err != nil {
		return err
	}
	if err := os.Chmod(r.CDB, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "Reloaded %s.\n", r.CDB)
	return nil
}
