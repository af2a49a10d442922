package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Postfix is a private Postfix instance (postfix -c DIR) listening on a
// loopback port only: its own main.cf, master.cf, queue and data
// directories under Dir. The system's /etc/postfix is only read (for
// postfix-files); nothing listens on port 25.
type Postfix struct {
	Dir       string
	Account   Account // owner of the virtual Maildir
	RelayPort int

	port int
}

// Name is "postfix".
func (p *Postfix) Name() string { return ServerPostfix }

// SMTPAddr is smtpd's address.
func (p *Postfix) SMTPAddr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *Postfix) configDir() string { return filepath.Join(p.Dir, "etc") }
func (p *Postfix) maildir() string {
	return filepath.Join(p.Dir, "vmail", LocalUser, "Maildir")
}

// The local user is a virtual(8) mailbox: Postfix's Maildir delivery
// without an account in /etc/passwd. DNS is off on both sides, as
// goqmail's tcpserver runs with -R -H and the relay is an IP address.
// Everything else is Postfix's default, fsync of queue files included
// (Postfix has no setting to turn it off).
var postfixMainCF = template.Must(template.New("main.cf").Parse(`# goqmail benchmark instance
compatibility_level = 3.6
config_directory = {{.Dir}}/etc
queue_directory = {{.Dir}}/queue
data_directory = {{.Dir}}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {{.Dir}}/maillog
maillog_file_prefixes = {{.Dir}}
myhostname = postfix.{{.Local}}
mydomain = {{.Local}}
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
alias_maps =
alias_database =
local_recipient_maps =
biff = no
virtual_mailbox_domains = {{.Local}}
virtual_mailbox_base = {{.Dir}}/vmail
virtual_mailbox_maps = inline:{ {{.User}}@{{.Local}}={{.User}}/Maildir/ }
virtual_minimum_uid = 1
virtual_uid_maps = static:{{.Uid}}
virtual_gid_maps = static:{{.Gid}}
relay_domains = {{.Relay}}
transport_maps = inline:{ {{.Relay}}=smtp:[127.0.0.1]:{{.RelayPort}} }
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
`))

// master.cf: Debian's services without chroot (the instance has no
// chroot tree) and smtpd on the benchmark's port only.
var postfixMasterCF = template.Must(template.New("master.cf").Parse(`127.0.0.1:{{.Port}} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
proxywrite unix - - n -  1 proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
local     unix  - n n -  - local
virtual   unix  - n n -  - virtual
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
`))

// Start writes the configuration and runs postfix start in group.
func (p *Postfix) Start(ctx context.Context, g *Group) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	p.port = port
	for _, d := range []string{p.configDir(), filepath.Join(p.Dir, "queue"), filepath.Join(p.Dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(p.maildir(), d), 0o700); err != nil {
			return err
		}
	}
	if err := p.Account.chownTree(filepath.Join(p.Dir, "vmail")); err != nil {
		return err
	}
	if err := chownTo(filepath.Join(p.Dir, "data"), "postfix"); err != nil {
		return err
	}
	vars := map[string]any{
		"Dir": p.Dir, "Local": LocalDomain, "Relay": RelayDomain, "User": LocalUser,
		"Uid": p.Account.Uid, "Gid": p.Account.Gid, "RelayPort": p.RelayPort, "Port": port,
	}
	for name, t := range map[string]*template.Template{"main.cf": postfixMainCF, "master.cf": postfixMasterCF} {
		var b bytes.Buffer
		if err := t.Execute(&b, vars); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(p.configDir(), name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := p.checkFsync(ctx); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "postfix", "-c", p.configDir(), "start")
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = Account{0, 0}.attr(g)
	if err := runQuiet(ctx, cmd); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.Dir, "maillog"))
		return fmt.Errorf("%w\n%s", err, log)
	}
	return waitSMTP(ctx, p.SMTPAddr(), 15*time.Second)
}

// checkFsync makes sure nothing in the instance's configuration talks
// about syncing: Postfix fsyncs its queue files unconditionally, and a
// benchmark that changed that would compare nothing.
func (p *Postfix) checkFsync(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "postconf", "-c", p.configDir(), "-n").CombinedOutput()
	if err != nil {
		return fmt.Errorf("postconf: %w: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, "=")
		if strings.Contains(strings.ToLower(name), "sync") {
			return fmt.Errorf("postfix configuration touches syncing: %q", line)
		}
	}
	return nil
}

// cleanEnv is the environment servers start with: no LD_PRELOAD (such as
// libeatmydata, which turns fsync into a no-op) from the caller.
func cleanEnv() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
}

func chownTo(path, account string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	out, err := exec.Command("chown", account, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chown %s %s: %w: %s", account, path, err, out)
	}
	return nil
}

// Inject runs Postfix's sendmail (postdrop, pickup, cleanup) once.
func (p *Postfix) Inject(ctx context.Context, g *Group, rcpt string, msg []byte) error {
	cmd := exec.CommandContext(ctx, "/usr/sbin/sendmail", "-C", p.configDir(), "-f", Sender, rcpt)
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = Account{0, 0}.attr(g)
	cmd.Stdin = bytes.NewReader(msg)
	return runQuiet(ctx, cmd)
}

// MaildirNew implements Server.
func (p *Postfix) MaildirNew() string {
	return filepath.Join(p.maildir(), "new")
}

// Stop runs postfix stop.
func (p *Postfix) Stop() {
	cmd := exec.Command("postfix", "-c", p.configDir(), "stop")
	cmd.Env = cleanEnv()
	cmd.Run()
}
