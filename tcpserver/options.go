package tcpserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// ListenMode tells whether a program's arguments (os.Args[1:]) ask for
// the standalone listener: the first one is --listen or -listen, with or
// without "=ADDR". Anything else means the tcpserver-style process.
func ListenMode(args []string) bool {
	if len(args) == 0 {
		return false
	}
	name, _, _ := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
	return strings.HasPrefix(args[0], "-") && name == "listen"
}

// Options are the command-line settings every standalone listener takes:
//
//	--listen ADDR (repeatable) [-x rules.cdb] [-c limit] [-l localname]
//	[-user account | -u uid -g gid] [-grace duration]
type Options struct {
	Addrs     addrList
	Rules     string
	MaxConns  int
	LocalHost string
	Account   string
	UID, GID  int
	Grace     time.Duration
}

type addrList []string

func (a *addrList) String() string     { return strings.Join(*a, ",") }
func (a *addrList) Set(v string) error { *a = append(*a, v); return nil }

// AddFlags registers the options on fs; account is the default account
// a root process switches to (qmaild for SMTP, QMTP and QMQP).
func (o *Options) AddFlags(fs *flag.FlagSet, account string) {
	fs.Var(&o.Addrs, "listen", "address to listen on, host:port (repeatable)")
	fs.StringVar(&o.Rules, "x", "", "tcprules cdb with per-client rules")
	fs.IntVar(&o.MaxConns, "c", DefaultMaxConns, "maximum number of concurrent connections")
	fs.StringVar(&o.LocalHost, "l", "", "TCPLOCALHOST for every connection")
	fs.StringVar(&o.Account, "user", account, "account to run as when started as root")
	fs.IntVar(&o.UID, "u", -1, "uid to run as when started as root (with -g)")
	fs.IntVar(&o.GID, "g", -1, "gid to run as when started as root (with -u)")
	fs.DurationVar(&o.Grace, "grace", DefaultGrace, "after TERM, how long running sessions may go on before their connections are closed")
}

// Listen binds every --listen address, reports each as "NAME: listening
// on ADDR" on log (tests and scripts read the port from it), then, in a
// root process, switches to -u/-g or to the account: the ports are bound
// with privilege, no connection is ever served with it. A root process
// whose account does not exist refuses to go on.
func (o *Options) Listen(name string, log io.Writer) ([]net.Listener, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("no --listen address")
	}
	var lns []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	// No TCP keep-alives on the accepted connections, as with
	// tcpserver: the programs have their own timeouts, and Go's default
	// cost four setsockopt calls per connection.
	lc := net.ListenConfig{KeepAlive: -1}
	for _, a := range o.Addrs {
		ln, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
		fmt.Fprintf(log, "%s: listening on %s\n", name, ln.Addr())
	}
	if os.Geteuid() == 0 {
		uid, gid := o.UID, o.GID
		if uid < 0 || gid < 0 {
			u, g, err := LookupAccount(o.Account)
			if err != nil {
				return fail(fmt.Errorf("refusing to serve as root: %w", err))
			}
			uid, gid = u, g
		}
		if err := DropPrivileges(uid, gid); err != nil {
			return fail(err)
		}
	}
	return lns, nil
}

// Server is a Server configured from the options; the caller adds the
// handler.
func (o *Options) Server(name string, log io.Writer, baseEnv []string) *Server {
	return &Server{
		RulesPath: o.Rules,
		LocalHost: o.LocalHost,
		MaxConns:  o.MaxConns,
		Log:       log,
		Name:      name,
		BaseEnv:   baseEnv,
		Grace:     o.Grace,
	}
}
