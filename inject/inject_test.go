package inject

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// injectCase is one run of qmail-inject -n; the netqmail cases were
// produced by netqmail 1.06's qmail-inject with control/me =
// testhost.example, in a directory holding the MFT file below.
type injectCase struct {
	name string
	env  map[string]string
	args []string
	in   string
	out  string // NOW and PID stand for the start time and process id
	err  string
	code int
}

const mftFile = "# lists\nlist@lists.example  \n\nother@x\n"

var (
	testNow = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	testPid = 4242
	// expand turns the placeholders of the recorded outputs into what
	// testNow and testPid give.
	expand = strings.NewReplacer(
		"Date: NOW", "Date: 1 Jan 2000 00:00:00 -0000",
		"<NOW.PID.", "<20000101000000.4242.",
		"-NOW.PID", "-946684800.4242",
	)
)

// testHome is a qmail home with control/me only.
func testHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "control"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "control", "me"), []byte("testhost.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return home
}

func runInject(t *testing.T, home string, env map[string]string, args []string, in string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(Invocation{
		Args: append([]string{"qmail-inject"}, args...),
		Env: func(n string) (string, bool) {
			v, ok := env[n]
			return v, ok
		},
		Home:   home,
		Stdin:  strings.NewReader(in),
		Stdout: &out,
		Stderr: &errb,
		Now:    testNow,
		Pid:    testPid,
	})
	return out.String(), errb.String(), code
}

func TestAgainstNetqmail(t *testing.T) {
	home := testHome(t)
	mft := filepath.Join(t.TempDir(), "MFT")
	if err := os.WriteFile(mft, []byte(mftFile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range netqmailCases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tc.env {
				if k == "QMAILMFTFILE" {
					v = filepath.Join(filepath.Dir(mft), v)
				}
				env[k] = v
			}
			out, errs, code := runInject(t, home, env, tc.args, tc.in)
			if want := expand.Replace(tc.out); out != want {
				t.Errorf("stdout:\n got %q\nwant %q", out, want)
			}
			if errs != tc.err {
				t.Errorf("stderr: got %q, want %q", errs, tc.err)
			}
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
		})
	}
}

func TestControlFiles(t *testing.T) {
	home := testHome(t)
	for name, v := range map[string]string{
		"defaulthost":   "dhost\n",
		"defaultdomain": "dom.example \t\n",
		"plusdomain":    "plus.example\n",
		"idhost":        "id.example\n",
	} {
		if err := os.WriteFile(filepath.Join(home, "control", name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in := "To: a, b@c, d@e+\n\nbody\n"
	want := "Return-Path: <joe@dhost.dom.example>\n" +
		"Date: 1 Jan 2000 00:00:00 -0000\n" +
		"Message-ID: <20000101000000.4242.qmail@id.example>\n" +
		"From: joe@dhost.dom.example\n" +
		"To: a@dhost.dom.example, b@c.dom.example, d@e.plus.example\n\nbody\n"
	out, errs, code := runInject(t, home, map[string]string{"USER": "joe"}, []string{"-n"}, in)
	if out != want || errs != "" || code != 0 {
		t.Errorf("got %q %q %d\nwant %q", out, errs, code, want)
	}
	// The environment overrides the control files.
	env := map[string]string{"USER": "joe", "QMAILDEFAULTHOST": "h2", "QMAILDEFAULTDOMAIN": "d2.example",
		"QMAILPLUSDOMAIN": "p2.example", "QMAILIDHOST": "i2.example"}
	want = "Return-Path: <joe@h2.d2.example>\n" +
		"Date: 1 Jan 2000 00:00:00 -0000\n" +
		"Message-ID: <20000101000000.4242.qmail@i2.example>\n" +
		"From: joe@h2.d2.example\n" +
		"To: a@h2.d2.example, b@c.d2.example, d@e.p2.example\n\nbody\n"
	out, errs, code = runInject(t, home, env, []string{"-n"}, in)
	if out != want || errs != "" || code != 0 {
		t.Errorf("got %q %q %d\nwant %q", out, errs, code, want)
	}
}

func TestMissingControlFallbacks(t *testing.T) {
	// Without control/me the literal names are used, as in qmail.
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, "control"), 0o755)
	out, _, code := runInject(t, home, map[string]string{"USER": "joe"}, []string{"-n"}, "To: a\n")
	want := "Return-Path: <joe@defaulthost.defaultdomain>\n" +
		"Date: 1 Jan 2000 00:00:00 -0000\n" +
		"Message-ID: <20000101000000.4242.qmail@idhost>\n" +
		"From: joe@defaulthost.defaultdomain\n" +
		"To: a@defaulthost.defaultdomain\n"
	if out != want || code != 0 {
		t.Errorf("got %q (%d), want %q", out, code, want)
	}
}

func TestBadHome(t *testing.T) {
	_, errs, code := runInject(t, filepath.Join(t.TempDir(), "nonexistent"), nil, []string{"-n"}, "To: a\n")
	if code != 111 || errs != "qmail-inject: fatal: internal bug\n" {
		t.Errorf("got %q %d", errs, code)
	}
}

func TestHeaderLimit(t *testing.T) {
	home := testHome(t)
	cases := []struct {
		name string
		in   string
		code int
	}{
		{"one huge field", "Subject: " + strings.Repeat("x", MaxHeader) + "\n\nbody\n", 100},
		{"many fields", strings.Repeat("X-A: "+strings.Repeat("y", 1000)+"\n", MaxHeader/1000+1), 100},
		{"huge continuation", "Subject: a\n " + strings.Repeat("x", MaxHeader) + "\n", 100},
		{"huge name-like line", strings.Repeat("x", MaxHeader+10), 100},
		{"huge body line after header", "To: a\n\n" + strings.Repeat("b", 3*MaxHeader) + "\n", 0},
		{"huge first line that is body", "no colon here " + strings.Repeat("b", 2*MaxHeader) + "\n", 0},
		{"huge line with bad name", "bad name: " + strings.Repeat("b", 2*MaxHeader) + "\n", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runInject(t, home, map[string]string{"USER": "j"}, []string{"-n"}, tc.in)
			if code != tc.code {
				t.Fatalf("exit %d (%q), want %d", code, errs, tc.code)
			}
			if code == 100 && errs != "qmail-inject: fatal: message header larger than 262144 bytes\n" {
				t.Errorf("stderr %q", errs)
			}
			if code == 0 && !strings.HasSuffix(out, strings.Repeat("b", 1000)+"\n") {
				t.Errorf("body not passed through")
			}
		})
	}
}

func TestRewriteAmplificationBounded(t *testing.T) {
	// Short addresses in a header within MaxHeader must not expand past
	// maxStored through a long default host.
	home := testHome(t)
	env := map[string]string{"USER": "j", "QMAILDEFAULTHOST": strings.Repeat("h", 200) + ".example"}
	in := "To: " + strings.Repeat("a,", MaxHeader/2-10) + "a\n\n"
	_, errs, code := runInject(t, home, env, []string{"-n"}, in)
	if code != 100 || errs != "qmail-inject: fatal: rewritten message header larger than 4194304 bytes\n" {
		t.Errorf("got %d %q", code, errs)
	}
}

func TestQuoteAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"joe", "joe"},
		{"joe@x.y", "joe@x.y"},
		{"a b@c", `"a b"@c`},
		{"a@b@c", `"a@b"@c`},
		{".joe@x", `".joe"@x`},
		{"jo..e@x", `"jo..e"@x`},
		{"joe.@x", `"joe."@x`},
		{`q"\x@y`, `"q\"\\x"@y`},
		{"@x", `""@x`},
		{"\xc3\xa9@x", "\"\xc3\xa9\"@x"},
		{"a\x00b@c", "a"},
		{"a-b+c=d/e!f#g$h%i&j'k*l?m^n_o`p{q|r}s~t@x", "a-b+c=d/e!f#g$h%i&j'k*l?m^n_o`p{q|r}s~t@x"},
	} {
		if got := quoteAddr(tc.in); got != tc.want {
			t.Errorf("quoteAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFieldNames(t *testing.T) {
	for _, tc := range []struct {
		in    string
		known fieldType
		valid bool
	}{
		{"To: x\n", fieldTo, true},
		{"tO \t: x\n", fieldTo, true},
		{"To x: y\n", fieldUnknown, false},
		{"Resent-Message-ID: x\n", fieldResentMessageID, true},
		{"Resent_Message-ID: x\n", fieldUnknown, true},
		{"Toto: x\n", fieldUnknown, true},
		{"To\n", fieldUnknown, false},
		{": x\n", fieldUnknown, false},
		{" : x\n", fieldUnknown, false},
		{"X\x7f: y\n", fieldUnknown, false},
		{"X\xc3: y\n", fieldUnknown, false},
		{"MAIL-FOLLOWUP-TO:", fieldMailFollowupTo, true},
		{"Content-Length:1", fieldContentLength, true},
	} {
		if got := knownField([]byte(tc.in)); got != tc.known {
			t.Errorf("knownField(%q) = %d, want %d", tc.in, got, tc.known)
		}
		if got := validField([]byte(tc.in)); got != tc.valid {
			t.Errorf("validField(%q) = %v, want %v", tc.in, got, tc.valid)
		}
	}
}

func TestDateAndMessageID(t *testing.T) {
	now := time.Date(1995, 9, 26, 4, 46, 53, 0, time.FixedZone("X", 3600))
	if got, want := dateField(now), "Date: 26 Sep 1995 03:46:53 -0000\n"; got != want {
		t.Errorf("dateField = %q, want %q", got, want)
	}
	if got, want := messageIDField("silverton.berkeley.edu", now, 12345),
		"Message-ID: <19950926034653.12345.qmail@silverton.berkeley.edu>\n"; got != want {
		t.Errorf("messageIDField = %q, want %q", got, want)
	}
	if got, want := dateField(time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)), "Date: 5 Mar 2024 00:00:00 -0000\n"; got != want {
		t.Errorf("dateField = %q, want %q", got, want)
	}
}

func FuzzInject(f *testing.F) {
	for _, tc := range netqmailCases {
		f.Add(tc.in, strings.Join(tc.args, " "))
	}
	home := f.TempDir()
	os.Mkdir(filepath.Join(home, "control"), 0o755)
	os.WriteFile(filepath.Join(home, "control", "me"), []byte("testhost.example\n"), 0o644)
	f.Fuzz(func(t *testing.T, in, recips string) {
		args := append([]string{"qmail-inject", "-n", "--"}, strings.Fields(recips)...)
		var out, errb bytes.Buffer
		code := Run(Invocation{
			Args:   args,
			Env:    func(n string) (string, bool) { return "", false },
			Home:   home,
			Stdin:  strings.NewReader(in),
			Stdout: &out,
			Stderr: &errb,
			Now:    testNow,
			Pid:    1,
		})
		switch code {
		case 0:
			if !strings.HasPrefix(out.String(), "Return-Path: <") || errb.Len() != 0 {
				t.Fatalf("success with output %q, stderr %q", out.String(), errb.String())
			}
		case 100:
			if !strings.HasPrefix(errb.String(), "qmail-inject: fatal: ") {
				t.Fatalf("exit 100 with stderr %q", errb.String())
			}
		default:
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
	})
}
