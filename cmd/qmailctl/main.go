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

func main() {
	root := &cobra.Command{
		Use:           "qmailctl",
		Short:         "Manage a goqmail installation",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(initCommand())
	if err := root.Execute(); err != nil {
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
