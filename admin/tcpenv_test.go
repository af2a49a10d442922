package admin

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/goqmail/goqmail/internal/testdns"
	"github.com/goqmail/goqmail/internal/testenv"
)

func TestParseTCPEnvArgs(t *testing.T) {
	tests := []struct {
		args    []string
		want    TCPEnvOptions
		wantErr bool
	}{
		{[]string{"prog"}, TCPEnvOptions{Ident: true, Timeout: 30, Program: []string{"prog"}}, false},
		{[]string{"-R", "prog", "-r"}, TCPEnvOptions{Ident: false, Timeout: 30, Program: []string{"prog", "-r"}}, false},
		{[]string{"-Rr", "-t5", "prog"}, TCPEnvOptions{Ident: true, Timeout: 5, Program: []string{"prog"}}, false},
		{[]string{"-t", "7", "--", "-prog"}, TCPEnvOptions{Ident: true, Timeout: 7, Program: []string{"-prog"}}, false},
		{[]string{"-Rt", "9", "p", "a"}, TCPEnvOptions{Ident: false, Timeout: 9, Program: []string{"p", "a"}}, false},
		{[]string{"-x", "prog"}, TCPEnvOptions{}, true},
		{[]string{"-R"}, TCPEnvOptions{}, true},
		{[]string{"-t"}, TCPEnvOptions{}, true},
	}
	for _, tt := range tests {
		got, err := ParseTCPEnvArgs(tt.args)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v", tt.args, err)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %+v, want %+v", tt.args, got, tt.want)
		}
	}
}

// lookupError classifies a failure as dns.Error does.
type lookupError struct{ permanent bool }

func (e lookupError) Error() string   { return "lookup failed" }
func (e lookupError) Permanent() bool { return e.permanent }

// fakePTR is a unit-test stand-in for the resolver.
type fakePTR map[string]error

func (f fakePTR) LookupPTR(ctx context.Context, a netip.Addr) ([]string, error) {
	if err, ok := f[a.String()]; ok {
		return nil, err
	}
	return []string{"Host-" + strings.ReplaceAll(a.String(), ":", "-") + ".Example."}, nil
}

func TestTCPEnviron(t *testing.T) {
	r := fakePTR{
		"192.0.2.9": lookupError{permanent: true},
		"192.0.2.8": lookupError{permanent: false},
	}
	tests := []struct {
		local, remote string
		want          []string
	}{
		{"127.0.0.1:25", "[::ffff:192.0.2.1]:4000", []string{"PROTO=TCP", "TCPLOCALPORT=25", "TCPLOCALIP=127.0.0.1", "TCPLOCALHOST=host-127.0.0.1.example",
			"TCPREMOTEPORT=4000", "TCPREMOTEIP=192.0.2.1", "TCPREMOTEHOST=host-192.0.2.1.example", "TCPREMOTEINFO"}},
		{"[2001:db8::1]:25", "192.0.2.9:1", []string{"PROTO=TCP", "TCPLOCALPORT=25", "TCPLOCALIP=2001:db8::1", "TCPLOCALHOST=host-2001-db8--1.example",
			"TCPREMOTEPORT=1", "TCPREMOTEIP=192.0.2.9", "TCPREMOTEHOST", "TCPREMOTEINFO"}},
		{"192.0.2.8:25", "192.0.2.9:1", []string{"PROTO=TCP", "TCPLOCALPORT=25", "TCPLOCALIP=192.0.2.8", "TCPLOCALHOST=softdnserror",
			"TCPREMOTEPORT=1", "TCPREMOTEIP=192.0.2.9", "TCPREMOTEHOST", "TCPREMOTEINFO"}},
	}
	for _, tt := range tests {
		got := TCPEnviron(context.Background(), netip.MustParseAddrPort(tt.local), netip.MustParseAddrPort(tt.remote), r)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %s:\n%q\nwant\n%q", tt.local, tt.remote, got, tt.want)
		}
	}
	changes := []string{"PROTO=TCP", "TCPREMOTEIP=1.2.3.4", "TCPREMOTEHOST", "TCPREMOTEINFO"}
	if got := ApplyEnviron([]string{"A=1", "TCPREMOTEINFO=x", "TCPREMOTEHOST=old", "PROTO=UDP"}, changes); !reflect.DeepEqual(got,
		[]string{"A=1", "PROTO=TCP", "TCPREMOTEIP=1.2.3.4"}) {
		t.Errorf("ApplyEnviron: %q", got)
	}
}

// TestTCPEnvProgram runs tcp-env with a real TCP connection on fd 0 and a
// DNS server answering the PTR query.
func TestTCPEnvProgram(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t)
	dnsAddr := testdns.StartFake(t, mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 && q.Question[0].Qtype == mdns.TypePTR && q.Question[0].Name == "1.0.0.127.in-addr.arpa." {
			rr, _ := mdns.NewRR("1.0.0.127.in-addr.arpa. 60 IN PTR LoopBack.Example.")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = mdns.RcodeNameError
		}
		w.WriteMsg(m)
	}), false)
	testenv.WriteControl(t, home, "dnsservers", dnsAddr+"\n")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sock, err := server.(*net.TCPConn).File()
	server.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	run := func(env ...string) map[string]string {
		cmd := exec.Command(testenv.Program(t, "tcp-env"), "-R", "env")
		cmd.Env = append([]string{"QMAILHOME=" + home, "PATH=" + os.Getenv("PATH"), "TCPREMOTEINFO=forged"}, env...)
		cmd.Stdin = sock
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tcp-env: %v", err)
		}
		vars := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(l, "=")
			vars[k] = v
		}
		return vars
	}
	vars := run()
	_, remotePort, _ := net.SplitHostPort(client.LocalAddr().String())
	_, localPort, _ := net.SplitHostPort(ln.Addr().String())
	want := map[string]string{
		"PROTO": "TCP", "TCPLOCALIP": "127.0.0.1", "TCPLOCALPORT": localPort, "TCPLOCALHOST": "loopback.example",
		"TCPREMOTEIP": "127.0.0.1", "TCPREMOTEPORT": remotePort, "TCPREMOTEHOST": "loopback.example",
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("%s=%q, want %q", k, vars[k], v)
		}
	}
	if v, ok := vars["TCPREMOTEINFO"]; ok {
		t.Errorf("TCPREMOTEINFO=%q survived", v)
	}
	// PROTO=TCP already: tcpserver set everything, tcp-env trusts it.
	vars = run("PROTO=TCP", "TCPREMOTEIP=192.0.2.1")
	if vars["TCPREMOTEIP"] != "192.0.2.1" || vars["TCPREMOTEINFO"] != "forged" {
		t.Errorf("with PROTO=TCP the environment changed: %v", vars)
	}
	if _, ok := vars["TCPLOCALHOST"]; ok {
		t.Errorf("with PROTO=TCP tcp-env looked things up: %v", vars)
	}
}

func FuzzParseTCPEnvArgs(f *testing.F) {
	f.Add("-Rr\x00-t5\x00prog\x00arg")
	f.Add("-t\x00")
	f.Add("--\x00-x")
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		opt, err := ParseTCPEnvArgs(args)
		if err != nil {
			return
		}
		if len(opt.Program) == 0 {
			t.Fatalf("no program from %q", args)
		}
		if last := args[len(args)-len(opt.Program):]; !reflect.DeepEqual(last, opt.Program) {
			t.Fatalf("program %q is not the tail of %q", opt.Program, args)
		}
	})
}
