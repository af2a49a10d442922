package admin

import (
	"context"
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/getopt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// TCPEnvOptions are tcp-env's options.
type TCPEnvOptions struct {
	// Ident asks for IDENT (-r, the default): accepted and ignored, as
	// IDENT answers are chosen by the client, carry no trust, and
	// goqmail does not depend on them. TCPREMOTEINFO is left unset.
	Ident bool
	// Timeout is -t, the IDENT timeout in seconds; also ignored.
	Timeout int
	// Program is the program to run with its arguments.
	Program []string
}

// ParseTCPEnvArgs parses "tcp-env [-rR] [-t timeout] program [args...]"
// with getopt's rules: options may be grouped (-rR), -t takes the rest of
// its word or the next word, "--" ends the options.
func ParseTCPEnvArgs(args []string) (TCPEnvOptions, error) {
	opt := TCPEnvOptions{Ident: true, Timeout: 30}
	g := getopt.New("tcp-env", args, "rRt:", nil)
	for c := g.Next(); c != getopt.Done; c = g.Next() {
		switch c {
		case 'r':
			opt.Ident = true
		case 'R':
			opt.Ident = false
		case 't':
			opt.Timeout, _ = scanDigits(g.Arg())
		default:
			return opt, errors.New("usage: tcp-env [-rR] [-t timeout] program [args...]")
		}
	}
	opt.Program = g.Rest()
	if len(opt.Program) == 0 {
		return opt, errors.New("usage: tcp-env [-rR] [-t timeout] program [args...]")
	}
	return opt, nil
}

// PTRResolver is the reverse lookup tcp-env needs (dns.Resolver). An
// error with a Permanent() bool method (dns.Error) that returns true
// means the address has no name.
type PTRResolver interface {
	LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error)
}

// TCPEnviron computes tcp-env's changes to the environment for a
// connection with the given local and remote addresses: PROTO=TCP,
// TCPLOCALIP, TCPLOCALPORT, TCPLOCALHOST, TCPREMOTEIP, TCPREMOTEPORT,
// TCPREMOTEHOST, and TCPREMOTEINFO removed. A host name is the first PTR
// name, lowercased, or "softdnserror" when the lookup failed temporarily;
// a name that does not exist removes the variable. The result is a list
// of "NAME=value" to set and "NAME" to remove.
func TCPEnviron(ctx context.Context, local, remote netip.AddrPort, r PTRResolver) []string {
	env := []string{"PROTO=TCP"}
	add := func(prefix string, ap netip.AddrPort) {
		ip := ap.Addr().Unmap()
		env = append(env,
			"TCP"+prefix+"PORT="+strconv.Itoa(int(ap.Port())),
			"TCP"+prefix+"IP="+ip.WithZone("").String())
		host, ok := ptrName(ctx, ip, r)
		if ok {
			env = append(env, "TCP"+prefix+"HOST="+host)
		} else {
			env = append(env, "TCP"+prefix+"HOST")
		}
	}
	add("LOCAL", local)
	add("REMOTE", remote)
	return append(env, "TCPREMOTEINFO")
}

func ptrName(ctx context.Context, ip netip.Addr, r PTRResolver) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	names, err := r.LookupPTR(ctx, ip)
	// dns.Error says whether the failure is permanent (no such name).
	var classified interface{ Permanent() bool }
	switch {
	case err == nil && len(names) > 0:
		return strings.ToLower(strings.TrimSuffix(names[0], ".")), true
	case err == nil:
		return "", false
	case errors.As(err, &classified) && classified.Permanent():
		return "", false
	}
	return "softdnserror", true
}

// ApplyEnviron applies TCPEnviron's changes to an environment list.
func ApplyEnviron(environ, changes []string) []string {
	out := make([]string, 0, len(environ)+len(changes))
	drop := map[string]bool{}
	for _, c := range changes {
		name, _, _ := strings.Cut(c, "=")
		drop[name] = true
	}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !drop[name] {
			out = append(out, kv)
		}
	}
	for _, c := range changes {
		if strings.Contains(c, "=") {
			out = append(out, c)
		}
	}
	return out
}

// AddrPortOf converts a net.Addr of a TCP socket.
func AddrPortOf(a net.Addr) (netip.AddrPort, error) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("not a TCP address: %v", a)
	}
	return ta.AddrPort(), nil
}
