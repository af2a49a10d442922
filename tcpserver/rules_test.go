package tcpserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRuleKeys(t *testing.T) {
	tests := []struct {
		ip   string
		want []string
	}{
		{"192.0.2.10", []string{"192.0.2.10", "192.0.2.", "192.0.", "192.", ""}},
		{"::1", []string{"::1", "::", ":", ""}},
		{"2001:db8::5", []string{"2001:db8::5", "2001:db8::", "2001:db8:", "2001:", ""}},
	}
	for _, tt := range tests {
		if got := RuleKeys(tt.ip); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("RuleKeys(%q) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		data string
		want Rule
	}{
		{"", Rule{}},
		{"D\x00", Rule{Deny: true}},
		{"+RELAYCLIENT=\x00+A=b=c\x00", Rule{Env: []string{"RELAYCLIENT=", "A=b=c"}}},
		{"+NOEQUALS\x00+X=1", Rule{}},
		{"\x00junk\x00D\x00", Rule{Deny: true}},
	}
	for _, tt := range tests {
		if got := ParseRule([]byte(tt.data)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRule(%q) = %+v, want %+v", tt.data, got, tt.want)
		}
	}
}

// TestLookupRuleTcprules reads a cdb made by ucspi-tcp's own tcprules.
func TestLookupRuleTcprules(t *testing.T) {
	tcprules, err := exec.LookPath("tcprules")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tcprules (Debian package ucspi-tcp) is missing")
		}
		t.Skip("tcprules (ucspi-tcp) not installed")
	}
	dir := t.TempDir()
	cdbPath := filepath.Join(dir, "rules.cdb")
	cmd := exec.Command(tcprules, cdbPath, cdbPath+".tmp")
	cmd.Stdin = strings.NewReader("10.1.2.3:allow,RELAYCLIENT=\"\",DATABYTES=\"100\"\n10.1.:deny\n10.:allow,X=\"y\"\n:allow\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tcprules: %v\n%s", err, out)
	}
	tests := []struct {
		ip   string
		want Rule
	}{
		{"10.1.2.3", Rule{Env: []string{"RELAYCLIENT=", "DATABYTES=100"}}},
		{"10.1.9.9", Rule{Deny: true}},
		{"10.9.9.9", Rule{Env: []string{"X=y"}}},
		{"192.0.2.1", Rule{}},
	}
	for _, tt := range tests {
		got, err := LookupRule(cdbPath, tt.ip)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LookupRule(%q) = %+v, %v; want %+v", tt.ip, got, err, tt.want)
		}
	}
}

func FuzzParseRule(f *testing.F) {
	f.Add([]byte("+A=b\x00D\x00"))
	f.Add([]byte("+=\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := ParseRule(data)
		for _, kv := range r.Env {
			if !strings.Contains(kv, "=") || strings.Contains(kv, "\x00") {
				t.Fatalf("bad variable %q", kv)
			}
		}
	})
}
