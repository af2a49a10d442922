// Package services writes the service definitions that run goqmail under
// a supervisor: daemontools or runit service directories (run and
// log/run, as in Life with qmail) or systemd units. The templates are the
// files under templates/, embedded; Install fills them in.
package services

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

//go:embed templates
var templates embed.FS

// Supervisors Install knows.
const (
	Daemontools = "daemontools"
	Runit       = "runit"
	Systemd     = "systemd"
)

// Ways of running qmail-smtpd (and the POP3, QMTP and QMQP services).
const (
	ModeTCPServer  = "tcpserver"  // one process per connection (ucspi-tcp)
	ModeStandalone = "standalone" // qmail-smtpd --listen
)

// Options say what Install writes.
type Options struct {
	Home       string // the qmail home the services run
	Dir        string // where service directories (or unit files) go
	Supervisor string // Daemontools, Runit or Systemd
	// SMTPMode is ModeTCPServer or ModeStandalone; the POP3, QMTP and
	// QMQP services run the same way (qmail-popup, qmail-qmtpd and
	// qmail-qmqpd --listen when standalone).
	SMTPMode string
	// LogDir holds the logs: qmail-send's in LogDir itself, each SMTP
	// service's in LogDir/smtpd, LogDir/submission, LogDir/smtps, as in
	// Life with qmail. Unused for systemd (the journal).
	LogDir string
	// Rules is the tcprules cdb of the SMTP services.
	Rules string
	// Host is the address the SMTP services listen on; "0" is every
	// address, as for tcpserver.
	Host string
	// Ports of the services; 0 leaves a service out.
	SMTPPort, SubmissionPort, SMTPSPort int
	// CheckPassword is the checkpassword chain for SMTP AUTH on the
	// submission and SMTPS services, e.g. "/bin/checkpassword /bin/true".
	CheckPassword string
	// Ports of the POP3 (110), POP3S (995), QMTP (209) and QMQP (628)
	// services; 0, the default, leaves a service out. They listen on
	// Host, log in LogDir/pop3d, pop3s, qmtpd and qmqpd, and use the
	// concurrency limit of control/concurrencyincoming.
	POP3Port, POP3SPort, QMTPPort, QMQPPort int
	// POP3CheckPassword is the checkpassword program qmail-popup runs
	// (it then runs qmail-pop3d with Maildir, the maildir's path
	// relative to the user's home, e.g. "./Maildir/").
	POP3CheckPassword, Maildir string
	// The tcprules cdbs of the POP3 (and POP3S), QMTP and QMQP services.
	// QMQP relays for every client it accepts: its rules must allow
	// only the QMQP clients.
	POP3Rules, QMTPRules, QMQPRules string
	// Accounts: qmail-smtpd runs as Qmaild in group Nofiles, the loggers
	// as Qmaill. RunAs, when set, replaces them all and also runs
	// qmail-send as that account: an unprivileged home.
	Qmaild, Nofiles, Qmaill string
	RunAs                   string
	// Down leaves a "down" file in each service directory, so that the
	// supervisor does not start it until "qmailctl start".
	Down bool
	// Force replaces existing run scripts and units.
	Force bool
}

// Defaults are the options of a standard installation.
func Defaults() Options {
	return Options{
		Home: "/var/qmail", Dir: "/var/qmail/supervise", Supervisor: Daemontools,
		SMTPMode: ModeTCPServer, LogDir: "/var/log/qmail", Rules: "/etc/tcp.smtp.cdb",
		Host: "0", SMTPPort: 25, CheckPassword: "/bin/checkpassword /bin/true",
		Qmaild: "qmaild", Nofiles: "nofiles", Qmaill: "qmaill",
		POP3CheckPassword: "/bin/checkpassword", Maildir: "./Maildir/",
		POP3Rules: "/etc/tcp.pop3.cdb", QMTPRules: "/etc/tcp.qmtp.cdb", QMQPRules: "/etc/tcp.qmqp.cdb",
	}
}

// service is one service Install writes, with what its templates need.
type service struct {
	Name             string
	Home, Rules      string
	Port             int
	Host             string // tcpserver's host argument
	ListenAddr       string // qmail-smtpd --listen
	Env              []string
	CheckPassword    []string
	SMTPUser         string
	SMTPGroupShell   string // a command printing the SMTP gid
	RunAs            string
	RunAsPrefix      string
	LogUser, LogDir  string
	runTemplate      string
	logSub           string
	isSend, smtpAuth bool

	// The POP3, QMTP and QMQP services (templates tcp.*).
	Title         string   // what the service speaks: "POP3", "QMTP"...
	Program       string   // the program in $QMAILHOME/bin
	PopupArgs     []string // qmail-popup's chain, after the hostname
	AsRoot        bool     // qmail-popup: checkpassword needs root
	NeedRcpthosts bool     // refuse to start without control/rcpthosts
	NeedCert      bool     // refuse to start without servercert.pem
	OpenRelay     bool     // QMQP: the rules are all that restricts it
}

// Names returns the names of the services o describes: qmail-send,
// then qmail-smtpd, qmail-submission and qmail-smtps for the ports set.
func (o Options) Names() []string {
	names := []string{"qmail-send"}
	if o.SMTPPort != 0 {
		names = append(names, "qmail-smtpd")
	}
	if o.SubmissionPort != 0 {
		names = append(names, "qmail-submission")
	}
	if o.SMTPSPort != 0 {
		names = append(names, "qmail-smtps")
	}
	for _, t := range o.tcpServices() {
		if t.port != 0 {
			names = append(names, t.name)
		}
	}
	return names
}

// tcpService is one of the POP3, QMTP and QMQP services.
type tcpService struct {
	name, title, program, logSub, rules string
	port                                int
	env                                 []string
}

func (o Options) tcpServices() []tcpService {
	return []tcpService{
		{"qmail-pop3d", "POP3", "qmail-popup", "pop3d", o.POP3Rules, o.POP3Port, nil},
		{"qmail-pop3s", "POP3S", "qmail-popup", "pop3s", o.POP3Rules, o.POP3SPort, []string{"POP3S=1"}},
		{"qmail-qmtpd", "QMTP", "qmail-qmtpd", "qmtpd", o.QMTPRules, o.QMTPPort, nil},
		{"qmail-qmqpd", "QMQP", "qmail-qmqpd", "qmqpd", o.QMQPRules, o.QMQPPort, nil},
	}
}

// safeWord: every value goes into shell scripts and unit files unquoted,
// so only bytes that mean nothing to sh or systemd are allowed.
func safeWord(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("/._-+:,@=[]", c) >= 0
		if !ok {
			return fmt.Errorf("%s %q: only letters, digits and /._-+:,@=[] are allowed", what, s)
		}
	}
	return nil
}

func (o Options) validate() error {
	switch o.Supervisor {
	case Daemontools, Runit, Systemd:
	default:
		return fmt.Errorf("unknown supervisor %q (daemontools, runit or systemd)", o.Supervisor)
	}
	switch o.SMTPMode {
	case ModeTCPServer, ModeStandalone:
	default:
		return fmt.Errorf("unknown SMTP mode %q (tcpserver or standalone)", o.SMTPMode)
	}
	checks := [][2]string{{"home", o.Home}, {"service directory", o.Dir}, {"rules", o.Rules}, {"listen address", o.Host}}
	if o.Supervisor != Systemd {
		checks = append(checks, [2]string{"log directory", o.LogDir})
	}
	if o.RunAs != "" {
		checks = append(checks, [2]string{"account", o.RunAs})
	} else {
		checks = append(checks, [2]string{"qmaild", o.Qmaild}, [2]string{"nofiles", o.Nofiles}, [2]string{"qmaill", o.Qmaill})
	}
	for _, c := range checks {
		if err := safeWord(c[0], c[1]); err != nil {
			return err
		}
	}
	for _, w := range strings.Fields(o.CheckPassword) {
		if err := safeWord("checkpassword", w); err != nil {
			return err
		}
	}
	if o.POP3Port != 0 || o.POP3SPort != 0 {
		checks = [][2]string{{"POP3 checkpassword", o.POP3CheckPassword}, {"maildir", o.Maildir}, {"POP3 rules", o.POP3Rules}}
		for _, c := range checks {
			if err := safeWord(c[0], c[1]); err != nil {
				return err
			}
		}
		if !filepath.IsAbs(o.POP3Rules) || !filepath.IsAbs(o.POP3CheckPassword) {
			return fmt.Errorf("POP3 rules %s and checkpassword %s: absolute paths are needed", o.POP3Rules, o.POP3CheckPassword)
		}
	}
	for _, t := range o.tcpServices()[2:] {
		if t.port == 0 {
			continue
		}
		if err := safeWord(t.title+" rules", t.rules); err != nil {
			return err
		}
		if !filepath.IsAbs(t.rules) {
			return fmt.Errorf("%s rules %s: an absolute path is needed", t.title, t.rules)
		}
	}
	for _, port := range []int{o.POP3Port, o.POP3SPort, o.QMTPPort, o.QMQPPort} {
		if port < 0 || port > 65535 {
			return fmt.Errorf("bad port %d", port)
		}
	}
	for _, p := range []string{o.Home, o.Dir, o.Rules} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("%s: an absolute path is needed", p)
		}
	}
	for _, port := range []int{o.SMTPPort, o.SubmissionPort, o.SMTPSPort} {
		if port < 0 || port > 65535 {
			return fmt.Errorf("bad port %d", port)
		}
	}
	if o.Host != "0" {
		if _, err := netip.ParseAddr(o.Host); err != nil {
			return fmt.Errorf("listen address %q: an IP address or 0: %w", o.Host, err)
		}
	}
	return nil
}

func (o Options) services() []service {
	smtpUser, group := o.Qmaild, "getent group "+o.Nofiles+" | cut -d: -f3"
	logUser := o.Qmaill
	prefix := ""
	if o.RunAs != "" {
		smtpUser, group, logUser = o.RunAs, "id -g "+o.RunAs, o.RunAs
		switch o.Supervisor {
		case Daemontools:
			prefix = "setuidgid " + o.RunAs + " "
		case Runit:
			prefix = "chpst -u " + o.RunAs + " "
		}
	}
	base := service{
		Home: o.Home, Rules: o.Rules, Host: o.Host, SMTPUser: smtpUser, SMTPGroupShell: group,
		RunAs: o.RunAs, RunAsPrefix: prefix, LogUser: logUser,
	}
	host := ""
	if o.Host != "0" {
		host = o.Host
	}
	var out []service
	send := base
	send.Name, send.isSend, send.runTemplate, send.logSub = "qmail-send", true, "qmail-send", ""
	out = append(out, send)
	smtp := []struct {
		name, logSub string
		port         int
		env          []string
	}{
		{"qmail-smtpd", "smtpd", o.SMTPPort, nil},
		// Submission (RFC 6409) and implicit TLS (RFC 8314): for the
		// users of this host, so AUTH is required before MAIL.
		{"qmail-submission", "submission", o.SubmissionPort, []string{"SMTPAUTH=!"}},
		{"qmail-smtps", "smtps", o.SMTPSPort, []string{"SMTPS=1", "SMTPAUTH=!"}},
	}
	for _, s := range smtp {
		if s.port == 0 {
			continue
		}
		svc := base
		svc.Name, svc.Port, svc.Env, svc.logSub = s.name, s.port, s.env, s.logSub
		svc.runTemplate = "qmail-smtpd." + o.SMTPMode
		svc.smtpAuth = s.env != nil
		if svc.smtpAuth {
			svc.CheckPassword = strings.Fields(o.CheckPassword)
		}
		svc.ListenAddr = netJoin(host, s.port)
		out = append(out, svc)
	}
	for _, t := range o.tcpServices() {
		if t.port == 0 {
			continue
		}
		svc := base
		svc.Name, svc.Title, svc.Program, svc.Port, svc.Env, svc.logSub = t.name, t.title, t.program, t.port, t.env, t.logSub
		svc.Rules = t.rules
		svc.runTemplate = "tcp." + o.SMTPMode
		svc.ListenAddr = netJoin(host, t.port)
		switch t.program {
		case "qmail-popup":
			svc.PopupArgs = []string{o.POP3CheckPassword, o.Home + "/bin/qmail-pop3d", o.Maildir}
			// checkpassword must be root to check passwords and become
			// the user, unless the whole home runs as one account.
			svc.AsRoot = o.RunAs == ""
			svc.NeedCert = t.env != nil
		case "qmail-qmtpd":
			svc.NeedRcpthosts = true
		case "qmail-qmqpd":
			svc.OpenRelay = true
		}
		out = append(out, svc)
	}
	for i := range out {
		out[i].LogDir = filepath.Join(o.LogDir, out[i].logSub)
	}
	return out
}

func netJoin(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// Render returns the files of every service, by path relative to Dir:
// name/run and name/log/run, or name.service for systemd.
func Render(o Options) (map[string][]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, svc := range o.services() {
		if o.Supervisor == Systemd {
			b, err := render(svc.runTemplate+".service", svc)
			if err != nil {
				return nil, err
			}
			files[svc.Name+".service"] = b
			continue
		}
		run, err := render(svc.runTemplate+".run", svc)
		if err != nil {
			return nil, err
		}
		logRun, err := render("log."+o.Supervisor+".run", svc)
		if err != nil {
			return nil, err
		}
		files[filepath.Join(svc.Name, "run")] = run
		files[filepath.Join(svc.Name, "log", "run")] = logRun
	}
	return files, nil
}

func render(name string, data service) ([]byte, error) {
	// tcp.header.tmpl defines the parts the tcp.* templates share.
	t, err := template.ParseFS(templates, "templates/"+name, "templates/tcp.header.tmpl")
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Install writes the services of o under o.Dir, and for daemontools and
// runit makes their log directories (owned by the log account when run
// as root) and control/concurrencyincoming (20, Life with qmail's
// example) when it is missing. It returns the paths written. Existing
// run scripts are kept unless o.Force is set.
func Install(o Options) ([]string, error) {
	files, err := Render(o)
	if err != nil {
		return nil, err
	}
	if !o.Force {
		for rel := range files {
			if _, err := os.Lstat(filepath.Join(o.Dir, rel)); err == nil {
				return nil, fmt.Errorf("%s exists (use --force to replace it)", filepath.Join(o.Dir, rel))
			}
		}
	}
	var written []string
	for _, svc := range o.services() {
		if o.Supervisor == Systemd {
			p := filepath.Join(o.Dir, svc.Name+".service")
			if err := writeFile(p, files[svc.Name+".service"], 0o644); err != nil {
				return written, err
			}
			written = append(written, p)
			continue
		}
		dir := filepath.Join(o.Dir, svc.Name)
		// The service directory is finished (log/run in place) before
		// run appears: svscan starts a directory as soon as it sees it.
		for _, d := range []string{dir, filepath.Join(dir, "log")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return written, err
			}
		}
		if o.Down {
			for _, d := range []string{dir, filepath.Join(dir, "log")} {
				if err := writeFile(filepath.Join(d, "down"), nil, 0o644); err != nil {
					return written, err
				}
			}
		}
		for _, rel := range []string{filepath.Join(svc.Name, "log", "run"), filepath.Join(svc.Name, "run")} {
			p := filepath.Join(o.Dir, rel)
			if err := writeFile(p, files[rel], 0o755); err != nil {
				return written, err
			}
			written = append(written, p)
		}
		if err := makeLogDir(svc.LogDir, svc.LogUser); err != nil {
			return written, err
		}
	}
	if o.Supervisor != Systemd || o.SMTPPort+o.SubmissionPort+o.SMTPSPort+o.POP3Port+o.POP3SPort+o.QMTPPort+o.QMQPPort > 0 {
		p := filepath.Join(o.Home, "control", "concurrencyincoming")
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			if err := writeFile(p, []byte("20\n"), 0o644); err != nil {
				return written, err
			}
			written = append(written, p)
		}
	}
	return written, nil
}

// makeLogDir creates a log directory; as root it gives it to the log
// account, which must be able to write there.
func makeLogDir(dir, account string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(account)
	if err != nil {
		return fmt.Errorf("log directory %s: %w", dir, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

// writeFile replaces path atomically with data: a supervisor may read a
// run script at any moment.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
