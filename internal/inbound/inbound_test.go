package inbound

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/control"
)

func TestReadEnviron(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Environ
	}{
		{"nothing set", nil, Environ{RemoteIP: "unknown", RemoteHost: "unknown", Local: "unknown"}},
		{"TCPLOCALIP without TCPLOCALHOST", map[string]string{"TCPLOCALIP": "192.0.2.9", "TCPREMOTEIP": "192.0.2.1"},
			Environ{RemoteIP: "192.0.2.1", RemoteHost: "unknown", Local: "192.0.2.9"}},
		{"TCPLOCALHOST wins, even empty", map[string]string{"TCPLOCALIP": "192.0.2.9", "TCPLOCALHOST": ""},
			Environ{RemoteIP: "unknown", RemoteHost: "unknown", Local: ""}},
		{"set but empty", map[string]string{"RELAYCLIENT": "", "TCPREMOTEINFO": "", "SMTPAUTH": "", "SMTPS": "", "TLSCIPHERS": ""},
			Environ{RemoteIP: "unknown", RemoteHost: "unknown", Local: "unknown", IsRelayClient: true, HasRemoteInfo: true,
				HasSMTPAuth: true, SMTPS: true, HasTLSCiphers: true}},
		{"values", map[string]string{"RELAYCLIENT": "@x", "TCPREMOTEINFO": "u", "SMTPAUTH": "+CRAM", "RCPTCHECK": "/bin/true", "TCPREMOTEHOST": "c.example"},
			Environ{RemoteIP: "unknown", RemoteHost: "c.example", Local: "unknown", RelayClient: "@x", IsRelayClient: true,
				RemoteInfo: "u", HasRemoteInfo: true, SMTPAuth: "+cram", HasSMTPAuth: true, RcptCheck: "/bin/true"}},
	}
	for _, tt := range tests {
		lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
		if got := ReadEnviron(lookup); got != tt.want {
			t.Errorf("%s: got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestReceived(t *testing.T) {
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))
	tests := []struct {
		got, want string
	}{
		{Received("QMTP", "mx.example", "192.0.2.1", "unknown", "", false, "", false, when),
			"Received: from unknown (192.0.2.1)\n  by mx.example with QMTP; 4 Mar 2026 04:06:07 -0000\n"},
		{Received("SMTP", "m x", "ip", "h<", "u\x00v", true, "", true, when),
			"Received: from h? (HELO ) (u@ip)\n  by m?x with SMTP; 4 Mar 2026 04:06:07 -0000\n"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q\nwant %q", tt.got, tt.want)
		}
	}
}

// FuzzReceived: whatever the connection says, the header stays two lines
// of safe characters.
func FuzzReceived(f *testing.F) {
	f.Add("client.example", "u", "x\ny", "mx\r\n")
	f.Add("", "\x00", "\xff", "a b")
	f.Fuzz(func(t *testing.T, host, info, helo, local string) {
		got := Received("ESMTP", local, "192.0.2.1", host, info, true, helo, true, time.Unix(0, 0))
		if strings.Count(got, "\n") != 2 || !strings.HasSuffix(got, "\n") {
			t.Fatalf("not two lines: %q", got)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c != '\n' && (c < ' ' || c > '~') {
				t.Fatalf("byte %#x in %q", c, got)
			}
		}
	})
}

func loadRcptHosts(t testing.TB, rcpthosts string) *RcptHosts {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "control"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "control", "rcpthosts"), []byte(rcpthosts), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := control.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	rh, err := LoadRcptHosts(files)
	if err != nil || rh == nil {
		t.Fatalf("LoadRcptHosts: %v, %v", rh, err)
	}
	t.Cleanup(func() { rh.Close() })
	return rh
}

// FuzzAllowed: no address upsets the check, and case never matters.
func FuzzAllowed(f *testing.F) {
	for _, s := range []string{"a@Listed.Example", "a@x.sub.example", "a", "@", "a@", "a@.", "a@b@listed.example"} {
		f.Add(s)
	}
	rh := loadRcptHosts(f, "listed.example\n.sub.example\n")
	f.Fuzz(func(t *testing.T, addr string) {
		ok, err := rh.Allowed(addr)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(addr, "@") && !ok {
			t.Fatalf("%q without @ refused", addr)
		}
		if !isASCII(addr) {
			return // Unicode case mappings are not all reversible
		}
		if up, _ := rh.Allowed(strings.ToUpper(addr)); up != ok {
			t.Fatalf("%q: %v, in upper case %v", addr, ok, up)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
