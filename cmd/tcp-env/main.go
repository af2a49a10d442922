// Command tcp-env sets up the tcp-environ(5) variables for a program run
// by inetd with a TCP socket on fd 0, then runs it (tcp-env(1)):
//
//	tcp-env [-rR] [-t timeout] program [args...]
//
// If PROTO is already TCP (tcpserver ran first), the environment is
// trusted and left alone. -r (IDENT) is accepted and does nothing: see
// admin.TCPEnvOptions.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"

	"github.com/goqmail/goqmail/admin"
	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/dns"
)

func main() {
	opt, err := admin.ParseTCPEnvArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcp-env: %v\n", err)
		os.Exit(111)
	}
	env := os.Environ()
	if os.Getenv("PROTO") != "TCP" {
		env, err = socketEnviron(env)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tcp-env: fatal: %v\n", err)
			os.Exit(111)
		}
	}
	path, err := exec.LookPath(opt.Program[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcp-env: fatal: %v\n", err)
		os.Exit(111)
	}
	err = syscall.Exec(path, opt.Program, env)
	fmt.Fprintf(os.Stderr, "tcp-env: fatal: cannot run %s: %v\n", path, err)
	os.Exit(111)
}

func socketEnviron(env []string) ([]string, error) {
	conn, err := net.FileConn(os.Stdin)
	if err != nil {
		return nil, fmt.Errorf("fd 0 is not a socket: %w", err)
	}
	local, err := admin.AddrPortOf(conn.LocalAddr())
	if err != nil {
		return nil, err
	}
	remote, err := admin.AddrPortOf(conn.RemoteAddr())
	if err != nil {
		return nil, err
	}
	conn.Close() // a duplicate: fd 0 stays open for the program
	ctl, err := control.Open(control.Home())
	if err != nil {
		return nil, err
	}
	cfg, err := dns.LoadConfig(ctl, dns.ResolvConf)
	if err != nil {
		return nil, err
	}
	resolver := dns.New(cfg, dns.Options{})
	changes := admin.TCPEnviron(context.Background(), local, remote, resolver)
	return admin.ApplyEnviron(env, changes), nil
}
