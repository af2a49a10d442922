package pop3

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// fakeLogin is a checkpassword stand-in: it records what would go to
// fd 3 and ends as told.
type fakeLogin struct {
	calls  []string
	result LoginResult
	err    error
	say    string // what the "child" writes on the connection
}

func (f *fakeLogin) login(data []byte, conn io.ReadWriter, pending []byte) (LoginResult, error) {
	f.calls = append(f.calls, string(data))
	if f.say != "" {
		io.WriteString(conn, f.say)
	}
	return f.result, f.err
}

func testPopup(f *fakeLogin) *Popup {
	return &Popup{Hostname: "pop.example", Login: f.login, Pid: 77, Now: func() time.Time { return time.Unix(1700000000, 0) }}
}

const greeting = "S: +OK <77.1700000000@pop.example>"

func TestPopupDialogs(t *testing.T) {
	tests := []struct {
		name   string
		login  fakeLogin
		script string
		calls  []string // fd 3 contents of each login attempt
	}{
		{"quit", fakeLogin{}, greeting + `
			C: NOOP
			S: +OK 
			C: quit
			S: +OK 
			C: USER ignored
		`, nil},
		{"user pass success", fakeLogin{say: "+OK \r\n"}, greeting + `
			C: USER bob
			S: +OK 
			C: PASS  secret word
			S: +OK 
			C: STAT
		`, []string{"bob\x00secret word\x00<77.1700000000@pop.example>\x00"}},
		{"bad password: one attempt per connection", fakeLogin{result: LoginResult{ExitCode: 1}}, greeting + `
			C: user bob
			S: +OK 
			C: pass wrong
			S: -ERR authorization failed
			C: pass again
		`, []string{"bob\x00wrong\x00<77.1700000000@pop.example>\x00"}},
		{"crash", fakeLogin{result: LoginResult{Crashed: true}}, greeting + `
			C: USER bob
			S: +OK 
			C: PASS pw
			S: -ERR aack, child crashed
		`, []string{"bob\x00pw\x00<77.1700000000@pop.example>\x00"}},
		{"chain cannot start", fakeLogin{err: errors.New("unable to open pipe")}, greeting + `
			C: USER bob
			S: +OK 
			C: PASS pw
			S: -ERR unable to open pipe
		`, []string{"bob\x00pw\x00<77.1700000000@pop.example>\x00"}},
		{"apop", fakeLogin{result: LoginResult{ExitCode: 1}}, greeting + `
			C: APOP
			S: -ERR syntax error
			C: APOP bob
			S: -ERR syntax error
			C: APOP bob c4c9334bac560ecc979e58001b3e22fb extra
			S: -ERR authorization failed
		`, []string{"bob\x00c4c9334bac560ecc979e58001b3e22fb extra\x00<77.1700000000@pop.example>\x00"}},
		{"errors before login", fakeLogin{}, greeting + `
			C: PASS early
			S: -ERR USER first
			C: USER
			S: -ERR syntax error
			C: USER bob
			S: +OK 
			C: PASS
			S: -ERR syntax error
			C: STAT
			S: -ERR authorization first
			C: CAPA
			S: -ERR authorization first
			C: STLS
			S: -ERR authorization first
			C: 
			S: -ERR authorization first
			C: QUIT
			S: +OK 
		`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.login
			runDialog(t, tt.script, func(c io.ReadWriter) { testPopup(&f).Serve(c) })
			if strings.Join(f.calls, "|") != strings.Join(tt.calls, "|") {
				t.Errorf("logins %q, want %q", f.calls, tt.calls)
			}
		})
	}
}

func TestPopupLineTooLong(t *testing.T) {
	f := &fakeLogin{}
	c := &pipeConn{in: strings.NewReader("USER " + strings.Repeat("x", MaxCommandLine) + "\r\nQUIT\r\n")}
	err := testPopup(f).Serve(c)
	if !errors.Is(err, ErrLineTooLong) || !strings.HasSuffix(c.out.String(), "\r\n-ERR line too long\r\n") {
		t.Errorf("Serve = %v, output %q", err, c.out.String())
	}
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line, verb, arg string
	}{
		{"USER bob", "USER", "bob"},
		{"user   bob  ", "user", "bob  "},
		{"PASS a b\r", "PASS", "a b"},
		{"QUIT\r\r", "QUIT\r", ""},
		{"", "", ""},
		{" lead", "", "lead"},
		{"NO\x00OP", "NO", ""},
		{"TOP 1\x002", "TOP", "1"},
	}
	for _, tt := range tests {
		c := ParseCommand(tt.line)
		if c.Verb != tt.verb || c.Arg != tt.arg {
			t.Errorf("ParseCommand(%q) = %q %q, want %q %q", tt.line, c.Verb, c.Arg, tt.verb, tt.arg)
		}
	}
}

func TestTimeoutFromEnv(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 1200 * time.Second, "5": 5 * time.Second, "0": 1200 * time.Second, "x": 1200 * time.Second, "30s": 30 * time.Second} {
		got := TimeoutFromEnv(func(string) (string, bool) { return v, v != "" })
		if got != want {
			t.Errorf("POP3TIMEOUT=%q: %v, want %v", v, got, want)
		}
	}
}

// FuzzParseCommand checks qmail's command splitting: the verb never holds
// a space, the argument never starts with one, and nothing past a NUL or
// a CR at the end survives.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"USER bob", "APOP a b", "PASS  x\r", "", "\x00", " \r\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c := ParseCommand(line)
		if strings.Contains(c.Verb, " ") || strings.HasPrefix(c.Arg, " ") {
			t.Fatalf("%q -> %q %q", line, c.Verb, c.Arg)
		}
		if strings.ContainsRune(c.Verb+c.Arg, 0) {
			t.Fatalf("NUL survived: %q", line)
		}
		if len(c.Verb)+len(c.Arg) > len(line) {
			t.Fatalf("grew: %q", line)
		}
	})
}

// FuzzPopup feeds arbitrary input to qmail-popup: it must answer every
// complete line with +OK or -ERR and never call checkpassword with
// data other than user NUL password NUL timestamp NUL.
func FuzzPopup(f *testing.F) {
	for _, s := range []string{"USER a\r\nPASS b\r\n", "APOP x y\r\n", "QUIT\r\n", "user\nnoop\n", "STLS\r\nCAPA\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		fl := &fakeLogin{result: LoginResult{ExitCode: 1}}
		c := &pipeConn{in: strings.NewReader(in)}
		testPopup(fl).Serve(c)
		for _, l := range strings.Split(strings.TrimSuffix(c.out.String(), "\r\n"), "\r\n") {
			if !strings.HasPrefix(l, "+OK ") && !strings.HasPrefix(l, "-ERR ") {
				t.Fatalf("reply %q", l)
			}
		}
		for _, d := range fl.calls {
			if strings.Count(d, "\x00") < 3 || !strings.HasSuffix(d, "\x00<77.1700000000@pop.example>\x00") {
				t.Fatalf("fd 3 data %q", d)
			}
		}
	})
}
