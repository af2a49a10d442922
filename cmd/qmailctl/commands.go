package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/goqmail/goqmail/admin"
	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/dns"
	"github.com/goqmail/goqmail/services"
)

// globals are the flags every subcommand shares.
type globals struct {
	home, supervisor, serviceDir string
}

func addGlobalFlags(root *cobra.Command) *globals {
	g := &globals{}
	root.PersistentFlags().StringVar(&g.home, "home", control.Home(), "the qmail home ($QMAILHOME)")
	root.PersistentFlags().StringVar(&g.supervisor, "supervisor", os.Getenv("QMAILCTL_SUPERVISOR"),
		"daemontools, runit or systemd ($QMAILCTL_SUPERVISOR; default: detected)")
	root.PersistentFlags().StringVar(&g.serviceDir, "service-dir", os.Getenv("QMAILCTL_SERVICE_DIR"),
		"directory of the service directories ($QMAILCTL_SERVICE_DIR; default /service, /etc/service for runit)")
	return g
}

// control is the admin.Control the flags describe; what they leave out
// is detected (admin.LocateServices).
func (g *globals) control() *admin.Control {
	c := &admin.Control{Home: g.home, Run: admin.ExecRunner, Out: os.Stdout}
	c.Supervisor, c.ServiceDir = admin.LocateServices(g.supervisor, g.serviceDir)
	return c
}

func controlCommands(g *globals) []*cobra.Command {
	type action struct {
		use, short, long string
		aliases          []string
		run              func(*admin.Control, context.Context) error
	}
	actions := []action{
		{"start", "Start qmail-send and the installed SMTP, POP3, QMTP and QMQP services with their logs", "", nil, (*admin.Control).Start},
		{"stop", "Stop the SMTP, POP3, QMTP and QMQP services, then qmail-send (it finishes its deliveries)", "", nil, (*admin.Control).Stop},
		{"restart", "Stop the receiving services, restart qmail-send (TERM), start them again", "", nil, (*admin.Control).Restart},
		{"stat", "Show the supervisor's status of every service and log, then the queue counts", "", nil, (*admin.Control).Stat},
		{"doqueue", "Clear the remote timeout table and retry every queued message now (ALRM)",
			"doqueue runs qmail-tcpok when the home has it, then sends ALRM to qmail-send,\nwhich makes every scheduled retry happen now.", []string{"flush", "alrm"}, (*admin.Control).Doqueue},
		{"reload", "Have qmail-send re-read locals and virtualdomains (HUP)", "", []string{"hup"}, (*admin.Control).Reload},
		{"pause", "Suspend qmail-send and the receiving services (STOP)", "", nil, (*admin.Control).Pause},
		{"cont", "Resume what pause suspended (CONT)", "", nil, (*admin.Control).Cont},
	}
	var cmds []*cobra.Command
	for _, a := range actions {
		cmds = append(cmds, &cobra.Command{
			Use: a.use, Short: a.short, Long: a.long, Aliases: a.aliases, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.run(g.control(), cmd.Context())
			},
		})
	}
	return cmds
}

func queueCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Show the queue: qmail-qstat, then qmail-qread",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			qdir := filepath.Join(g.home, "queue")
			stat, err := admin.StatQueue(qdir)
			if err != nil {
				return fmt.Errorf("queue: %w", err)
			}
			entries, err := admin.ReadQueue(qdir)
			if err != nil {
				return fmt.Errorf("queue: %w", err)
			}
			if asJSON {
				if entries == nil {
					entries = []admin.QueueEntry{}
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					admin.QueueStat
					Messages []admin.QueueEntry `json:"queue"`
				}{stat, entries})
			}
			if err := admin.WriteQstat(os.Stdout, stat); err != nil {
				return err
			}
			return admin.WriteQread(os.Stdout, entries)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the counts and every message as JSON")
	return cmd
}

func cdbCommand(g *globals) *cobra.Command {
	smtp := admin.RulesOptions{Source: "/etc/tcp.smtp", CDB: "/etc/tcp.smtp.cdb"}
	pop3 := admin.RulesOptions{Source: "/etc/tcp.pop3", CDB: "/etc/tcp.pop3.cdb", Optional: true}
	qmtp := admin.RulesOptions{Source: "/etc/tcp.qmtp", CDB: "/etc/tcp.qmtp.cdb", Optional: true}
	qmqp := admin.RulesOptions{Source: "/etc/tcp.qmqp", CDB: "/etc/tcp.qmqp.cdb", Optional: true}
	cmd := &cobra.Command{
		Use:   "cdb",
		Short: "Rebuild the tcprules cdbs, morercpthosts.cdb and users/cdb",
		Long: `cdb compiles the SMTP rules with tcprules, and the POP3, QMTP and QMQP
rules when their sources exist, then rebuilds control/morercpthosts.cdb
(qmail-newmrh) and users/cdb (qmail-newu) when their sources exist.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rules := []admin.RulesOptions{smtp, pop3, qmtp, qmqp}
			return admin.RebuildCDBs(cmd.Context(), g.home, rules, os.Stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&smtp.Source, "rules", smtp.Source, "tcprules source of the SMTP services")
	f.StringVar(&smtp.CDB, "rules-cdb", smtp.CDB, "the cdb tcpserver (-x) reads")
	f.StringVar(&pop3.Source, "pop3-rules", pop3.Source, "tcprules source of the POP3 services (compiled when it exists)")
	f.StringVar(&pop3.CDB, "pop3-rules-cdb", pop3.CDB, "the cdb of the POP3 services")
	f.StringVar(&qmtp.Source, "qmtp-rules", qmtp.Source, "tcprules source of the QMTP service (compiled when it exists)")
	f.StringVar(&qmtp.CDB, "qmtp-rules-cdb", qmtp.CDB, "the cdb of the QMTP service")
	f.StringVar(&qmqp.Source, "qmqp-rules", qmqp.Source, "tcprules source of the QMQP service (compiled when it exists)")
	f.StringVar(&qmqp.CDB, "qmqp-rules-cdb", qmqp.CDB, "the cdb of the QMQP service")
	return cmd
}

func checkCommand(g *globals) *cobra.Command {
	var noDNS bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report what in the configuration would hurt; exit 1 on any error",
		Long: `check reads the whole configuration of the qmail home and reports, each
with a severity: a missing rcpthosts (an open relay), a queue that is not
qmail's layout (split, modes, and owners when the qmail users own it),
control/me missing or not resolving, servercert.pem unreadable, without
key, expired or expiring within 30 days, users/cdb older than
users/assign and morercpthosts.cdb older than morercpthosts. It exits 1
when any finding is an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := admin.CheckOptions{Home: g.home, Now: time.Now()}
			if ids, err := admin.LookupIds(); err == nil {
				opt.Ids = ids
			}
			if !noDNS {
				ctl, err := control.Open(g.home)
				if err != nil {
					return err
				}
				cfg, err := dns.LoadConfig(ctl, dns.ResolvConf)
				if err != nil {
					return err
				}
				opt.Resolver = dns.New(cfg, dns.Options{})
			}
			if admin.WriteFindings(os.Stdout, admin.Check(cmd.Context(), opt)) {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noDNS, "no-dns", false, "do not look control/me up in the DNS")
	return cmd
}

func servicesCommand(g *globals) *cobra.Command {
	parent := &cobra.Command{Use: "services", Short: "Write service directories or systemd units"}
	o := services.Defaults()
	install := &cobra.Command{
		Use:   "install",
		Short: "Write qmail-send, SMTP, POP3, QMTP and QMQP services for daemontools, runit or systemd",
		Long: `install writes the services that run goqmail: qmail-send (qmail-start with
control/defaultdelivery) and qmail-smtpd on port 25, and with
--submission-port and --smtps-port the submission (AUTH required) and
SMTPS services; with --pop3-port, --pop3s-port, --qmtp-port and
--qmqp-port the POP3 (qmail-popup, qmail-pop3d), POP3S, QMTP and QMQP
services, each with its own tcprules cdb. For daemontools and runit
each is a service directory with run and log/run (multilog or svlogd
as qmaill); for systemd a unit.
Link the directories into the service directory (or write them there)
and run qmailctl start.`,
		Example: `  qmailctl services install --dir /var/qmail/supervise
  ln -s /var/qmail/supervise/qmail-send /var/qmail/supervise/qmail-smtpd /service/
  qmailctl services install --supervisor systemd --dir /etc/systemd/system --submission-port 587`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Home = g.home
			if o.Supervisor == "" {
				o.Supervisor = g.supervisor
			}
			if o.Supervisor == "" {
				o.Supervisor = services.Daemontools
			}
			written, err := services.Install(o)
			for _, p := range written {
				fmt.Println("wrote", p)
			}
			return err
		},
	}
	f := install.Flags()
	f.StringVar(&o.Dir, "dir", o.Dir, "where to write the service directories or units")
	f.StringVar(&o.Supervisor, "for", "", "daemontools, runit or systemd (default: --supervisor, else daemontools)")
	f.StringVar(&o.SMTPMode, "smtpd", o.SMTPMode, "run qmail-smtpd under tcpserver or standalone (qmail-smtpd --listen)")
	f.StringVar(&o.LogDir, "log-dir", o.LogDir, "log directory (daemontools and runit)")
	f.StringVar(&o.Rules, "rules-cdb", o.Rules, "tcprules cdb of the SMTP services")
	f.StringVar(&o.Host, "ip", o.Host, "address the SMTP services listen on (0: all)")
	f.IntVar(&o.SMTPPort, "smtp-port", o.SMTPPort, "SMTP port (0: no qmail-smtpd service)")
	f.IntVar(&o.SubmissionPort, "submission-port", 0, "submission port, e.g. 587, with AUTH required (0: none)")
	f.IntVar(&o.SMTPSPort, "smtps-port", 0, "SMTPS port, e.g. 465, TLS from the first byte and AUTH required (0: none)")
	f.StringVar(&o.CheckPassword, "checkpassword", o.CheckPassword, "checkpassword chain for SMTP AUTH")
	f.StringVar(&o.Qmaild, "qmaild", o.Qmaild, "account of qmail-smtpd")
	f.StringVar(&o.Nofiles, "nofiles", o.Nofiles, "group of qmail-smtpd")
	f.StringVar(&o.Qmaill, "qmaill", o.Qmaill, "account of the loggers")
	f.StringVar(&o.RunAs, "run-as", "", "run every service as this account (an unprivileged home)")
	f.IntVar(&o.POP3Port, "pop3-port", 0, "POP3 port, e.g. 110 (0: no qmail-pop3d service)")
	f.IntVar(&o.POP3SPort, "pop3s-port", 0, "POP3S port, e.g. 995, TLS from the first byte (0: none)")
	f.IntVar(&o.QMTPPort, "qmtp-port", 0, "QMTP port, e.g. 209 (0: no qmail-qmtpd service)")
	f.IntVar(&o.QMQPPort, "qmqp-port", 0, "QMQP port, e.g. 628; it relays for every client its rules allow (0: none)")
	f.StringVar(&o.POP3CheckPassword, "pop3-checkpassword", o.POP3CheckPassword, "checkpassword program qmail-popup runs")
	f.StringVar(&o.Maildir, "maildir", o.Maildir, "maildir qmail-pop3d serves, relative to the user's home")
	f.StringVar(&o.POP3Rules, "pop3-rules-cdb", o.POP3Rules, "tcprules cdb of the POP3 services")
	f.StringVar(&o.QMTPRules, "qmtp-rules-cdb", o.QMTPRules, "tcprules cdb of the QMTP service")
	f.StringVar(&o.QMQPRules, "qmqp-rules-cdb", o.QMQPRules, "tcprules cdb of the QMQP service (allow only QMQP clients)")
	f.BoolVar(&o.Down, "down", false, "add down files: the supervisor waits for qmailctl start")
	f.BoolVar(&o.Force, "force", false, "replace existing run scripts and units")
	parent.AddCommand(install)
	return parent
}

func manCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write man pages for qmailctl and its subcommands into DIR",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return admin.WriteManPages(root, args[0], time.Now())
		},
	}
}
