package dns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goqmail/goqmail/control"
)

// ResolvConf is where the system's stub resolver configuration lives.
const ResolvConf = "/etc/resolv.conf"

// Limits and defaults of the system resolver (glibc's resolv.h), so that
// a resolv.conf means the same to us as to res_query, which qmail uses.
const (
	defaultTimeout  = 5 * time.Second
	maxTimeout      = 30 * time.Second
	defaultAttempts = 2
	maxAttempts     = 5
	// maxResolvConfServers is glibc's MAXNS: later nameserver lines are
	// ignored.
	maxResolvConfServers = 3
	// maxConfigLine bounds a resolv.conf line; real ones are short.
	maxConfigLine = 4096
	// maxServers bounds control/dnsservers.
	maxServers = 64
)

// Config says which servers to ask and how patiently.
type Config struct {
	// Servers are "addr:port" strings (IPv6 in brackets), asked in order.
	Servers []string
	// Timeout is how long one query to one server may take.
	Timeout time.Duration
	// Attempts is how many rounds over all the servers a lookup makes.
	Attempts int
	// Rotate starts each lookup at a different server (resolv.conf's
	// "options rotate").
	Rotate bool
}

// defaultServer is what glibc asks when resolv.conf names no server.
const defaultServer = "127.0.0.1:53"

// ParseResolvConf reads resolv.conf(5) syntax: "nameserver ADDR" lines and
// the "options" timeout:N, attempts:N and rotate. Other keywords (search,
// domain, sortlist, ...) do not concern qmail, which never searches. Like
// glibc, at most three nameservers are used, unparseable addresses are
// skipped, and a file without one means 127.0.0.1.
func ParseResolvConf(r io.Reader) (Config, error) {
	cfg := Config{Timeout: defaultTimeout, Attempts: defaultAttempts}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxConfigLine)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) < 2 || len(cfg.Servers) >= maxResolvConfServers {
				continue
			}
			if server, err := parseServer(fields[1]); err == nil {
				cfg.Servers = append(cfg.Servers, server)
			}
		case "options":
			for _, opt := range fields[1:] {
				applyOption(&cfg, opt)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Config{}, err
	}
	if len(cfg.Servers) == 0 {
		cfg.Servers = []string{defaultServer}
	}
	return cfg, nil
}

// applyOption applies one resolv.conf option, clamping values as glibc
// does; unknown options are ignored.
func applyOption(cfg *Config, opt string) {
	name, value, _ := strings.Cut(opt, ":")
	switch name {
	case "timeout":
		if n, err := strconv.Atoi(value); err == nil && n >= 0 {
			d := time.Duration(n) * time.Second
			if d > maxTimeout || n > int(maxTimeout/time.Second) {
				d = maxTimeout
			}
			if d == 0 {
				// glibc waits at least a second; zero would mean
				// never getting an answer.
				d = time.Second
			}
			cfg.Timeout = d
		}
	case "attempts":
		if n, err := strconv.Atoi(value); err == nil && n >= 0 {
			cfg.Attempts = min(max(n, 1), maxAttempts)
		}
	case "rotate":
		cfg.Rotate = true
	}
}

// ReadResolvConf parses the resolv.conf at path. A missing file gives
// the defaults, as it does for the C library.
func ReadResolvConf(path string) (Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ParseResolvConf(strings.NewReader(""))
	}
	if err != nil {
		return Config{}, fmt.Errorf("dns: %w", err)
	}
	defer f.Close()
	cfg, err := ParseResolvConf(f)
	if err != nil {
		return Config{}, fmt.Errorf("dns: %s: %w", path, err)
	}
	return cfg, nil
}

// LoadConfig is the configuration of a qmail program: resolvConf (normally
// ResolvConf) gives the timeout, attempts and rotation, and
// control/dnsservers, when it exists and lists at least one server,
// replaces resolv.conf's nameservers.
func LoadConfig(ctl *control.Files, resolvConf string) (Config, error) {
	cfg, err := ReadResolvConf(resolvConf)
	if err != nil {
		return Config{}, err
	}
	lines, _, err := ctl.List("dnsservers")
	if err != nil {
		return Config{}, err
	}
	servers, err := ParseServers(lines)
	if err != nil {
		return Config{}, fmt.Errorf("control/dnsservers: %w", err)
	}
	if len(servers) > 0 {
		cfg.Servers = servers
	}
	return cfg, nil
}

// ParseServers parses control/dnsservers lines: "IP" (port 53) or
// "IP:port", IPv6 as "[addr]:port" (a bare IPv6 address also works). Any
// bad line is an error: a typo must not silently send queries elsewhere.
func ParseServers(lines []string) ([]string, error) {
	if len(lines) > maxServers {
		return nil, fmt.Errorf("more than %d servers", maxServers)
	}
	var servers []string
	for _, line := range lines {
		server, err := parseServer(strings.TrimSpace(line))
		if err != nil {
			return nil, err
		}
		servers = append(servers, server)
	}
	return servers, nil
}

// parseServer turns "IP", "IP:port" or "[IPv6]:port" into "addr:port".
func parseServer(s string) (string, error) {
	if addr, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(addr, 53).String(), nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if addr, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && addr.Is6() {
			return netip.AddrPortFrom(addr, 53).String(), nil
		}
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return "", fmt.Errorf("bad DNS server address %q", s)
	}
	return ap.String(), nil
}
