// Command qmailctl manages a goqmail installation in the manner of Life
// with qmail's qmailctl script.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/goqmail/goqmail/admin"
	"github.com/goqmail/goqmail/control"
)

// exitError carries an exit status other than 1 out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := &cobra.Command{
		Use:   "qmailctl",
		Short: "Manage a goqmail installation",
		Long: `qmailctl manages a goqmail installation as Life with qmail's qmailctl
script does: it starts, stops and signals the qmail services through
daemontools (svc, svstat), runit (sv) or systemd (systemctl), shows the
queue, rebuilds the cdb files, checks the configuration and writes the
service definitions. See docs/qmailctl.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g := addGlobalFlags(root)
	root.AddCommand(initCommand())
	root.AddCommand(controlCommands(g)...)
	root.AddCommand(queueCommand(g), cdbCommand(g), checkCommand(g), servicesCommand(g), manCommand(root))
	if err := root.Execute(); err != nil {
		if e, ok := err.(exitError); ok {
			os.Exit(e.code)
		}
		fmt.Fprintf(os.Stderr, "qmailctl: %v\n", err)
		os.Exit(1)
	}
}

func initCommand() *cobra.Command {
	var opt admin.InitOptions
	var unprivileged bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a qmail home with its queue, control files and programs",
		Long: `init creates a complete qmail home where $QMAILHOME points (default
/var/qmail): bin, control (me, locals and rcpthosts set to this host's
name, defaultdelivery ./Maildir/), the queue with qmail's layout, modes
and split, users, alias and doc. Run as root it gives everything qmail's
owners and modes, and needs the qmail users and groups to exist; run as
anyone else (or with --unprivileged) everything belongs to the caller.
It never overwrites an existing queue.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opt.Me == "" {
				host, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("cannot find this host's name (use --me): %w", err)
				}
				opt.Me = host
			}
			if os.Geteuid() == 0 && !unprivileged {
				ids, err := admin.LookupIds()
				if err != nil {
					return fmt.Errorf("%w: create them (see docs/install.md) or use --unprivileged", err)
				}
				opt.Ids = ids
			}
			if err := admin.InitHome(opt); err != nil {
				return err
			}
			fmt.Printf("qmail home ready in %s (me: %s)\n", opt.Home, opt.Me)
			return nil
		},
	}
	programs := ""
	if exe, err := os.Executable(); err == nil {
		programs = filepath.Dir(exe)
	}
	cmd.Flags().StringVar(&opt.Home, "home", control.Home(), "the qmail home to create")
	cmd.Flags().StringVar(&opt.Me, "me", "", "this host's fully qualified name (default: the host name)")
	cmd.Flags().StringVar(&opt.Programs, "programs", programs, "directory of goqmail programs to install into bin/ (empty: none)")
	cmd.Flags().BoolVar(&unprivileged, "unprivileged", false, "own everything by the caller even when run as root")
	return cmd
}
