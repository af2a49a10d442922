package dns

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/control"
)

func TestParseResolvConf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		want       Config
	}{
		{"empty", "", Config{Servers: []string{"127.0.0.1:53"}, Timeout: 5 * time.Second, Attempts: 2}},
		{"typical", "# comment\nsearch example.org\nnameserver 192.0.2.1\nnameserver 2001:db8::53\noptions timeout:3 attempts:4 rotate ndots:2\n",
			Config{Servers: []string{"192.0.2.1:53", "[2001:db8::53]:53"}, Timeout: 3 * time.Second, Attempts: 4, Rotate: true}},
		{"at most three, bad ones skipped", "nameserver bogus\nnameserver 192.0.2.1\nnameserver 192.0.2.2 ; trailing\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n",
			Config{Servers: []string{"192.0.2.1:53", "192.0.2.2:53", "192.0.2.3:53"}, Timeout: 5 * time.Second, Attempts: 2}},
		{"clamped", "nameserver 192.0.2.1\noptions timeout:99999999999 attempts:50\n",
			Config{Servers: []string{"192.0.2.1:53"}, Timeout: 30 * time.Second, Attempts: 5}},
		{"zeros", "nameserver 192.0.2.1\noptions timeout:0 attempts:0\n",
			Config{Servers: []string{"192.0.2.1:53"}, Timeout: time.Second, Attempts: 1}},
		{"nonsense options", "nameserver 192.0.2.1\noptions timeout:x attempts:-1 timeout\n",
			Config{Servers: []string{"192.0.2.1:53"}, Timeout: 5 * time.Second, Attempts: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResolvConf(strings.NewReader(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseResolvConfLongLine(t *testing.T) {
	t.Parallel()
	if _, err := ParseResolvConf(strings.NewReader(strings.Repeat("x", 1<<20))); err == nil {
		t.Error("a 1 MiB line was accepted")
	}
}

func TestParseServers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lines []string
		want  []string
		bad   bool
	}{
		{[]string{"192.0.2.1", "192.0.2.2:5353", "[2001:db8::1]:5353", "2001:db8::2", "[2001:db8::3]"},
			[]string{"192.0.2.1:53", "192.0.2.2:5353", "[2001:db8::1]:5353", "[2001:db8::2]:53", "[2001:db8::3]:53"}, false},
		{[]string{"ns.example.org"}, nil, true},
		{[]string{"192.0.2.1:0"}, nil, true},
		{[]string{"192.0.2.1:99999"}, nil, true},
		{[]string{"2001:db8::1:5353x"}, nil, true},
		{nil, nil, false},
	}
	for _, tc := range tests {
		got, err := ParseServers(tc.lines)
		if (err != nil) != tc.bad || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseServers(%q) = %q, %v; want %q, bad=%v", tc.lines, got, err, tc.want, tc.bad)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "control"), 0o755); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(home, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.1\noptions timeout:2 attempts:3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func() (Config, error) {
		ctl, err := control.Open(home)
		if err != nil {
			t.Fatal(err)
		}
		return LoadConfig(ctl, resolv)
	}
	cfg, err := load()
	if err != nil || !reflect.DeepEqual(cfg.Servers, []string{"192.0.2.1:53"}) || cfg.Timeout != 2*time.Second || cfg.Attempts != 3 {
		t.Errorf("without dnsservers: %+v, %v", cfg, err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(home, "control", "dnsservers"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# local resolver\n127.0.0.1:5353 \n\n[::1]:5353\n")
	cfg, err = load()
	if err != nil || !reflect.DeepEqual(cfg.Servers, []string{"127.0.0.1:5353", "[::1]:5353"}) || cfg.Timeout != 2*time.Second {
		t.Errorf("with dnsservers: %+v, %v", cfg, err)
	}
	write("# nothing\n")
	if cfg, err = load(); err != nil || !reflect.DeepEqual(cfg.Servers, []string{"192.0.2.1:53"}) {
		t.Errorf("with an empty dnsservers: %+v, %v", cfg, err)
	}
	write("not-an-address\n")
	if _, err = load(); err == nil {
		t.Error("bad dnsservers accepted")
	}
	if cfg, err := LoadConfig(mustOpen(t, home), filepath.Join(home, "missing")); err != nil || len(cfg.Servers) == 0 {
		t.Errorf("missing resolv.conf: %+v, %v", cfg, err)
	}
}

func mustOpen(t *testing.T, home string) *control.Files {
	t.Helper()
	os.Remove(filepath.Join(home, "control", "dnsservers"))
	ctl, err := control.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	return ctl
}

func FuzzParseResolvConf(f *testing.F) {
	f.Add("nameserver 192.0.2.1\noptions timeout:3 attempts:4 rotate\n")
	f.Add("nameserver [::1]\nnameserver fe80::1%eth0\n")
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := ParseResolvConf(strings.NewReader(text))
		if err != nil {
			return
		}
		if len(cfg.Servers) == 0 || len(cfg.Servers) > maxResolvConfServers {
			t.Errorf("%d servers", len(cfg.Servers))
		}
		if cfg.Timeout < time.Second || cfg.Timeout > maxTimeout || cfg.Attempts < 1 || cfg.Attempts > maxAttempts {
			t.Errorf("out of range: %+v", cfg)
		}
	})
}

func FuzzParseServers(f *testing.F) {
	f.Add("192.0.2.1:53")
	f.Add("[2001:db8::1]:5353")
	f.Add("2001:db8::2")
	f.Fuzz(func(t *testing.T, line string) {
		servers, err := ParseServers([]string{line})
		if err != nil {
			return
		}
		if _, err := ParseServers(servers); err != nil {
			t.Errorf("%q parsed to %q, which does not parse again: %v", line, servers, err)
		}
	})
}
