// Command qmail-smtpd receives mail over SMTP (qmail-smtpd(8)).
//
// Under tcpserver, one process per connection, the socket on fd 0 and 1:
//
//	qmail-smtpd [checkpassword-program [args...]]
//
// As a standalone listener, one process for all connections:
//
//	qmail-smtpd --listen ADDR [--listen ADDR...] [-x tcp.smtp.cdb] [-c limit]
//	    [-l localname] [-user qmaild | -u uid -g gid] [--] [checkpassword...]
//
// The optional trailing arguments are the checkpassword chain used for
// SMTP AUTH (see SMTPAUTH in docs/smtpd.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/smtpd"
)

func main() {
	// A client that goes away must give a write error, not SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	if len(os.Args) > 1 && strings.HasPrefix(strings.TrimLeft(os.Args[1], "-"), "listen") {
		os.Exit(listen(os.Args[1:]))
	}
	home := control.Home()
	conn := smtpd.StdioConn()
	refuse := func(err error) {
		env := smtpd.ReadEnviron(os.LookupEnv)
		os.Exit(smtpd.RefuseSession(conn, os.Stderr, os.Getpid(), env.RemoteIP, err))
	}
	if err := os.Chdir(home); err != nil {
		refuse(err)
	}
	cfg, err := smtpd.LoadConfig(home, os.LookupEnv)
	if err != nil {
		refuse(err)
	}
	cfg.CheckPassword = os.Args[1:]
	session := smtpd.NewSession(cfg, conn, os.Stderr)
	session.SetEnv = func(k, v string) { os.Setenv(k, v) }
	os.Exit(session.Run())
}

type addrList []string

func (a *addrList) String() string     { return strings.Join(*a, ",") }
func (a *addrList) Set(v string) error { *a = append(*a, v); return nil }

func listen(args []string) int {
	fs := flag.NewFlagSet("qmail-smtpd", flag.ContinueOnError)
	var addrs addrList
	fs.Var(&addrs, "listen", "address to listen on, host:port (repeatable)")
	rules := fs.String("x", "", "tcprules cdb with per-client rules")
	limit := fs.Int("c", 40, "maximum number of concurrent sessions")
	localName := fs.String("l", "", "TCPLOCALHOST for every session")
	account := fs.String("user", "qmaild", "account to run as when started as root")
	uid := fs.Int("u", -1, "uid to run as when started as root (with -g)")
	gid := fs.Int("g", -1, "gid to run as when started as root (with -u)")
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "qmail-smtpd: fatal: %v\n", err)
		return 111
	}
	if err := fs.Parse(args); err != nil {
		return 100
	}
	if len(addrs) == 0 {
		return fail(fmt.Errorf("no --listen address"))
	}
	home := control.Home()
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
		fmt.Fprintf(os.Stderr, "qmail-smtpd: listening on %s\n", ln.Addr())
	}
	if os.Geteuid() == 0 {
		if *uid < 0 || *gid < 0 {
			u, g, err := smtpd.LookupAccount(*account)
			if err != nil {
				return fail(fmt.Errorf("refusing to serve as root: %w", err))
			}
			*uid, *gid = u, g
		}
		if err := smtpd.DropPrivileges(*uid, *gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Chdir(home); err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	l := &smtpd.Listener{
		Home: home, RulesPath: *rules, LocalHost: *localName, MaxConns: *limit,
		CheckPassword: fs.Args(), Log: os.Stderr, BaseEnv: os.Environ(),
	}
	if err := l.Serve(ctx, lns); err != nil {
		return fail(err)
	}
	return 0
}
