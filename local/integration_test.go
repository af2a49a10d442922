package local_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/queue"
)

// user is a mail user's home directory with its .qmail files.
type user struct {
	t    *testing.T
	home string
}

func newUser(t *testing.T) *user {
	home := t.TempDir()
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	return &user{t: t, home: home}
}

func (u *user) write(name, content string, mode os.FileMode) {
	u.t.Helper()
	p := filepath.Join(u.home, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		u.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		u.t.Fatal(err)
	}
}

func (u *user) read(name string) string {
	u.t.Helper()
	b, err := os.ReadFile(filepath.Join(u.home, name))
	if err != nil {
		u.t.Fatal(err)
	}
	return string(b)
}

func (u *user) maildir(name string) string {
	u.t.Helper()
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		if err := os.Mkdir(filepath.Join(u.home, name, sub), 0o700); err != nil {
			u.t.Fatal(err)
		}
	}
	return filepath.Join(u.home, name)
}

// result is how one qmail-local run ended.
type result struct {
	stdout, stderr string
	code           int
}

// delivery describes one qmail-local run.
type delivery struct {
	flags                         []string
	local, dash, ext, host, sendr string
	defaultDelivery               string
	env                           []string
	msg                           string
}

func (u *user) deliver(d delivery) result {
	u.t.Helper()
	if d.host == "" {
		d.host = "example.org"
	}
	if d.local == "" {
		d.local = "bob" + d.dash + d.ext
	}
	if d.defaultDelivery == "" {
		d.defaultDelivery = "./Mailbox"
	}
	f, err := os.CreateTemp(u.t.TempDir(), "msg")
	if err != nil {
		u.t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(d.msg)
	f.Seek(0, io.SeekStart)
	args := append(append([]string{}, d.flags...), "bob", u.home, d.local, d.dash, d.ext, d.host, d.sendr, d.defaultDelivery)
	return run(u.t, testenv.Program(u.t, "qmail-local"), args, f, d.env)
}

func run(t *testing.T, prog string, args []string, stdin *os.File, env []string) result {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

func expect(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Errorf("got exit %d stdout %q stderr %q\nwant exit %d stdout %q stderr %q",
			r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

const message = "Subject: test\nFrom: a@b\n\nFrom the body\n>From quoted\nlast line"

var maildirName = regexp.MustCompile(`^[0-9]+\.[0-9]+(_[0-9]+)?\.[^/]+$`)

func TestMaildirDelivery(t *testing.T) {
	t.Parallel()
	u := newUser(t)
	md := u.maildir("Maildir")
	u.write(".qmail", "./Maildir/\n./Maildir/\n", 0o644)
	r := u.deliver(delivery{sendr: "alice@example.com", msg: message})
	expect(t, r, 0, "did 2+0+0\n", "")
	entries, _ := os.ReadDir(filepath.Join(md, "new"))
	if len(entries) != 2 {
		t.Fatalf("%d messages in new/, want 2", len(entries))
	}
	want := "Return-Path: <alice@example.com>\nDelivered-To: bob@example.org\n" + message
	for _, e := range entries {
		if !maildirName.MatchString(e.Name()) {
			t.Errorf("maildir file name %q", e.Name())
		}
		if got := u.read(filepath.Join("Maildir/new", e.Name())); got != want {
			t.Errorf("maildir message %q, want %q", got, want)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(md, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ not empty: %v", tmp)
	}
	// A real maildir reader sees the two messages.
	py := testenv.Tool(t, "python3", "python3")
	out, err := exec.Command(py, "-c", `import mailbox,sys
m = mailbox.Maildir(sys.argv[1], create=False)
print(len(m), *sorted(x["Subject"] for x in m))`, md).CombinedOutput()
	if err != nil || string(out) != "2 test test\n" {
		t.Errorf("python mailbox.Maildir: %q %v", out, err)
	}
}

func TestMaildirMissing(t *testing.T) {
	t.Parallel()
	u := newUser(t)
	u.write(".qmail", "./Nothere/\n", 0o644)
	expect(t, u.deliver(delivery{msg: message}), 111, "", "Unable to chdir to maildir. (#4.2.1)\n")
}

// A full disk during an mbox delivery defers the message with qmail's
// text; a maildir without tmp/ defers it too.
func TestWriteErrors(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	u := newUser(t)
	u.write(".qmail", "/dev/full\n", 0o644)
	expect(t, u.deliver(delivery{msg: message}), 111, "", "Unable to write /dev/full: out of disk space. (#4.3.0)\n")
	os.Mkdir(filepath.Join(u.home, "Broken"), 0o700)
	u.write(".qmail", "./Broken/\n", 0o644)
	expect(t, u.deliver(delivery{msg: message}), 111, "", "Temporary error on maildir delivery. (#4.3.0)\n")
}

var fromLine = regexp.MustCompile(`^From ([^ ]*) (Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}\n`)

func TestMboxDelivery(t *testing.T) {
	t.Parallel()
	u := newUser(t)
	u.write("Mailbox", "existing\n\n", 0o600)
	// No .qmail: the default delivery ./Mailbox applies.
	r := u.deliver(delivery{sendr: "a b@example.com", msg: message})
	expect(t, r, 0, "did 1+0+0\n", "")
	r = u.deliver(delivery{sendr: "", msg: "x\n"})
	expect(t, r, 0, "did 1+0+0\n", "")
	got := u.read("Mailbox")
	if !strings.HasPrefix(got, "existing\n\n") {
		t.Fatalf("mbox lost its contents: %q", got)
	}
	got = got[len("existing\n\n"):]
	m := fromLine.FindStringSubmatch(got)
	if m == nil || m[1] != "a-b@example.com" {
		t.Fatalf("first From_ line wrong in %q", got)
	}
	got = got[len(m[0]):]
	want1 := "Return-Path: <\"a b\"@example.com>\nDelivered-To: bob@example.org\n" +
		"Subject: test\nFrom: a@b\n\n>From the body\n>>From quoted\nlast line\n\n"
	if !strings.HasPrefix(got, want1) {
		t.Fatalf("first message %q, want %q", got, want1)
	}
	got = got[len(want1):]
	m = fromLine.FindStringSubmatch(got)
	if m == nil || m[1] != "MAILER-DAEMON" {
		t.Fatalf("second From_ line wrong in %q", got)
	}
	if want2 := "Return-Path: <>\nDelivered-To: bob@example.org\nx\n\n"; got[len(m[0]):] != want2 {
		t.Errorf("second message %q, want %q", got[len(m[0]):], want2)
	}
	if st, _ := os.Stat(filepath.Join(u.home, "Mailbox")); st.Mode().Perm() != 0o600 {
		t.Errorf("mbox mode %v", st.Mode())
	}
	py := testenv.Tool(t, "python3", "python3")
	out, err := exec.Command(py, "-c", `import mailbox,sys
m = mailbox.mbox(sys.argv[1], create=False)
print(len(m), repr(m[0].get_payload()), m[0].get_from())`, filepath.Join(u.home, "Mailbox")).CombinedOutput()
	if err != nil || !regexp.MustCompile(`^2 '>From the body\\n>>From quoted\\nlast line\\n' a-b@example.com [A-Z]`).Match(out) {
		t.Errorf("python mailbox.mbox: %q %v", out, err)
	}
}

// lockHolder holds an exclusive flock on path with util-linux's flock(1)
// until release is called.
func lockHolder(t *testing.T, path string) (release func()) {
	flock := testenv.Tool(t, "flock", "util-linux")
	cmd := exec.Command(flock, "-x", path, "-c", "echo locked; read x")
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(outPipe).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("flock: %q %v", line, err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			in.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(release)
	return release
}

func TestMboxWaitsForLock(t *testing.T) {
	t.Parallel()
	u := newUser(t)
	mbox := filepath.Join(u.home, "Mailbox")
	u.write("Mailbox", "", 0o600)
	release := lockHolder(t, mbox)

	f, _ := os.CreateTemp(t.TempDir(), "msg")
	f.WriteString("hello\n")
	f.Seek(0, io.SeekStart)
	cmd := exec.Command(testenv.Program(t, "qmail-local"), "bob", u.home, "bob", "", "", "example.org", "s@x", "./Mailbox")
	cmd.Stdin = f
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// While the lock is held nothing may be written: give qmail-local
	// ample time to (wrongly) write, then look.
	select {
	case err := <-done:
		t.Fatalf("qmail-local finished while the mbox was locked: %v %q", err, out.String())
	case <-time.After(time.Second):
	}
	if got := u.read("Mailbox"); got != "" {
		t.Fatalf("mbox written while locked: %q", got)
	}
	release()
	if err := <-done; err != nil || out.String() != "did 1+0+0\n" {
		t.Fatalf("after release: %v %q", err, out.String())
	}
	if got := u.read("Mailbox"); !strings.HasSuffix(got, "Delivered-To: bob@example.org\nhello\n\n") {
		t.Errorf("mbox %q", got)
	}
}

func TestMboxLockTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 30 seconds")
	}
	t.Parallel()
	u := newUser(t)
	u.write("Mailbox", "old\n", 0o600)
	lockHolder(t, filepath.Join(u.home, "Mailbox"))
	r := u.deliver(delivery{msg: "x\n"})
	expect(t, r, 111, "", "File has been locked for 30 seconds straight. (#4.3.0)\n")
	if got := u.read("Mailbox"); got != "old\n" {
		t.Errorf("mbox changed: %q", got)
	}
}

func TestProgramEnvironment(t *testing.T) {
	t.Parallel()
	u := newUser(t)
	u.write(".qmail-list-default", "|env > env.out; cat > msg.out; pwd > pwd.out\n", 0o644)
	r := u.deliver(delivery{
		dash: "-", ext: "List-Foo.Bar-x-y", host: "mx.a.b.example", sendr: "s@x.org",
		env: []string{"DEFAULT=inherited", "NEWSENDER=inherited"},
		msg: message,
	})
	expect(t, r, 0, "did 0+0+1\n", "")
	if got := u.read("msg.out"); got != message {
		t.Errorf("program stdin %q, want the bare message", got)
	}
	if got := u.read("pwd.out"); got != u.home+"\n" {
		t.Errorf("program ran in %q", got)
	}
	env := map[string]string{}
	for _, l := range strings.Split(u.read("env.out"), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			if _, dup := env[k]; dup {
				t.Errorf("%s set twice", k)
			}
			env[k] = v
		}
	}
	want := map[string]string{
		"HOST": "mx.a.b.example", "HOST2": "mx.a.b", "HOST3": "mx.a", "HOST4": "mx",
		"HOME": u.home, "USER": "bob", "LOCAL": "bob-List-Foo.Bar-x-y",
		"RECIPIENT": "bob-List-Foo.Bar-x-y@mx.a.b.example",
		"SENDER":    "s@x.org", "NEWSENDER": "s@x.org",
		"EXT": "List-Foo.Bar-x-y", "EXT2": "Foo.Bar-x-y", "EXT3": "x-y", "EXT4": "y",
		"DEFAULT": "Foo.Bar-x-y",
		"RPLINE":  "Return-Path: <s@x.org>",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	// env(1) prints the trailing newline of DTLINE and UFLINE as a line
	// break; the value itself ends in "\n".
	if env["DTLINE"] != "Delivered-To: bob-List-Foo.Bar-x-y@mx.a.b.example" {
		t.Errorf("DTLINE=%q", env["DTLINE"])
	}
	if !fromLine.MatchString(env["UFLINE"]+"\n") || !strings.HasPrefix(env["UFLINE"], "From s@x.org ") {
		t.Errorf("UFLINE=%q", env["UFLINE"])
	}
}

func TestProgramExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		exit     string
		code     int
		stdout   string
		stderr   string
		reachedB bool
	}{
		{"exit 0", 0, "did 1+0+2\n", "", true},
		{"exit 99", 0, "did 0+0+1\n", "", false},
		{"exit 100", 100, "", "", false},
		{"exit 64", 100, "", "", false},
		{"exit 65", 100, "", "", false},
		{"exit 70", 100, "", "", false},
		{"exit 76", 100, "", "", false},
		{"exit 77", 100, "", "", false},
		{"exit 78", 100, "", "", false},
		{"exit 112", 100, "", "", false},
		{"exit 111", 111, "", "", false},
		{"exit 1", 111, "", "", false},
		{"echo oops >&2; exit 2", 111, "", "oops\n", false},
		{"kill -9 $$", 111, "", "Aack, child crashed. (#4.3.0)\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.exit, func(t *testing.T) {
			t.Parallel()
			u := newUser(t)
			u.write(".qmail", "|"+tt.exit+"\n|echo B > b.out\n./mbox\n", 0o644)
			expect(t, u.deliver(delivery{msg: message}), tt.code, tt.stdout, tt.stderr)
			_, err := os.Stat(filepath.Join(u.home, "b.out"))
			if (err == nil) != tt.reachedB {
				t.Errorf("second line run: %v, want %v", err == nil, tt.reachedB)
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		owner  []string // extra files
		sender string
		want   string // NEWSENDER
	}{
		{"plain", nil, "s@x.org", "s@x.org"},
		{"owner", []string{".qmail-list-owner"}, "s@x.org", "bob-list-owner@example.org"},
		{"verp", []string{".qmail-list-owner", ".qmail-list-owner-default"}, "s@x.org", "bob-list-owner-@example.org-@[]"},
		{"owner-default alone", []string{".qmail-list-owner-default"}, "s@x.org", "s@x.org"},
		{"bounce", []string{".qmail-list-owner"}, "", ""},
		{"double bounce", []string{".qmail-list-owner"}, "#@[]", "#@[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := testenv.NewHome(t)
			cq := testenv.CaptureQueue(t, 0)
			qq := cq.Program
			u := newUser(t)
			u.write(".qmail-list", "&a@one.example\n# comment\nb@two.example\n|echo ran > prog.out\n", 0o644)
			for _, f := range tt.owner {
				u.write(f, "", 0o644)
			}
			r := u.deliver(delivery{dash: "-", ext: "list", sendr: tt.sender, msg: message,
				env: []string{"QMAILHOME=" + home, "QMAILQUEUE=" + qq}})
			// qp is the pid of the queue program.
			expect(t, r, 0, "did 0+2+1\nqp "+cq.Single(t).Pid+"\n", "")
			if got, want := cq.Single(t).Message, "Delivered-To: bob-list@example.org\n"+message; got != want {
				t.Errorf("queued message %q, want %q", got, want)
			}
			if got, want := cq.Single(t).Envelope, "F"+tt.want+"\x00Ta@one.example\x00Tb@two.example\x00\x00"; got != want {
				t.Errorf("envelope %q, want %q", got, want)
			}
		})
	}
}

// Forwarding through the real qmail-queue: the copy lands in the queue
// with Delivered-To added and NEWSENDER as its sender.
func TestForwardIntoQueue(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-queue")
	u := newUser(t)
	u.write(".qmail-list", "&a@one.example\nb@two.example\n", 0o644)
	u.write(".qmail-list-owner", "", 0o644)
	r := u.deliver(delivery{dash: "-", ext: "list", sendr: "s@x.org", msg: message, env: []string{"QMAILHOME=" + home}})
	if r.code != 0 || !strings.HasPrefix(r.stdout, "did 0+2+0\nqp ") {
		t.Fatalf("got %+v", r)
	}
	todo, err := os.ReadDir(filepath.Join(home, "queue", "todo"))
	if err != nil || len(todo) != 1 {
		t.Fatalf("queue/todo: %v %v", todo, err)
	}
	f, err := os.Open(filepath.Join(home, "queue", "todo", todo[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	rr := queue.NewRecordReader(f, queue.MaxAddr)
	for {
		rec, err := rr.Next()
		if err != nil {
			break
		}
		if rec.Type == 'F' || rec.Type == 'T' {
			got = append(got, string(rec.Type)+rec.Text)
		}
	}
	if want := []string{"Fbob-list-owner@example.org", "Ta@one.example", "Tb@two.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("queued envelope %q, want %q", got, want)
	}
	var n int
	fmt.Sscan(todo[0].Name(), &n)
	mess := readFile(t, filepath.Join(home, "queue", "mess", fmt.Sprint(n%queue.Split), todo[0].Name()))
	if !strings.HasSuffix(mess, "\nDelivered-To: bob-list@example.org\n"+message) || !strings.HasPrefix(mess, "Received: ") {
		t.Errorf("queued message %q", mess)
	}
}

func TestForwardFailure(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		qqexit int
		code   int
		text   string
	}{
		{31, 100, "Unable to forward message: mail server permanently rejected message (#5.3.0).\n"},
		{53, 111, "Unable to forward message: qq write error or disk full (#4.3.0).\n"},
	} {
		home := testenv.NewHome(t)
		qq := testenv.CaptureQueue(t, tt.qqexit).Program
		u := newUser(t)
		u.write(".qmail", "&a@one.example\n", 0o644)
		r := u.deliver(delivery{msg: message, env: []string{"QMAILHOME=" + home, "QMAILQUEUE=" + qq}})
		expect(t, r, tt.code, "", tt.text)
	}
}

// A program exiting 99 stops the file there, but forwards already seen
// still go out; a failing program stops them.
func TestForwardAndProgramOrder(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t)
	cq := testenv.CaptureQueue(t, 0)
	qq := cq.Program
	u := newUser(t)
	u.write(".qmail", "a@one.example\n|exit 99\nb@two.example\n", 0o644)
	r := u.deliver(delivery{sendr: "s@x", msg: message, env: []string{"QMAILHOME=" + home, "QMAILQUEUE=" + qq}})
	if r.code != 0 || !strings.HasPrefix(r.stdout, "did 0+1+1\nqp ") {
		t.Fatalf("got %+v", r)
	}
	if got := cq.Single(t).Envelope; got != "Fs@x\x00Ta@one.example\x00\x00" {
		t.Errorf("envelope %q", got)
	}

	cq2 := testenv.CaptureQueue(t, 0)
	qq2 := cq2.Program
	u.write(".qmail", "a@one.example\n|exit 100\n", 0o644)
	r = u.deliver(delivery{sendr: "s@x", msg: message, env: []string{"QMAILHOME=" + home, "QMAILQUEUE=" + qq2}})
	expect(t, r, 100, "", "")
	if cq2.Ran(t) {
		t.Error("forwarded although a program failed")
	}
}

func TestDotQmailSelection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   []string
		dash    string
		ext     string
		code    int
		chosen  string // the file whose program ran
		deflt   string
		stderr  string
		hasDeft bool
	}{
		{"exact", []string{".qmail-foo-bar", ".qmail-foo-default"}, "-", "foo-bar", 0, ".qmail-foo-bar", "", "", false},
		{"case and dots", []string{".qmail-foo:bar"}, "-", "Foo.Bar", 0, ".qmail-foo:bar", "", "", false},
		{"longest default", []string{".qmail-foo-default", ".qmail-default"}, "-", "foo-Bar-baz", 0, ".qmail-foo-default", "Bar-baz", "", true},
		{"catch-all", []string{".qmail-default"}, "-", "x-y", 0, ".qmail-default", "x-y", "", true},
		{"exact default name", []string{".qmail-x-default"}, "-", "x-Default", 0, ".qmail-x-default", "Default", "", true},
		{"none", []string{".qmail"}, "-", "nobody", 100, "", "", "Sorry, no mailbox here by that name. (#5.1.1)\n", false},
		{"directory is no file", []string{".qmail-default"}, "-", "dir", 0, ".qmail-default", "dir", "", true},
		{"FIFO is no file", []string{".qmail-default"}, "-", "fifo", 0, ".qmail-default", "fifo", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUser(t)
			for _, f := range tt.files {
				u.write(f, "|echo \"$DEFAULT\" > chosen"+f+"\n|test \"${DEFAULT+set}\" = set && touch hasdefault; exit 0\n", 0o644)
			}
			os.Mkdir(filepath.Join(u.home, ".qmail-dir"), 0o755)
			if err := syscall.Mkfifo(filepath.Join(u.home, ".qmail-fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := u.deliver(delivery{dash: tt.dash, ext: tt.ext, msg: message})
			if r.code != tt.code || r.stderr != tt.stderr {
				t.Fatalf("got %+v", r)
			}
			if tt.chosen == "" {
				return
			}
			if got := u.read("chosen" + tt.chosen); got != tt.deflt+"\n" {
				t.Errorf("DEFAULT=%q, want %q", got, tt.deflt)
			}
			_, err := os.Stat(filepath.Join(u.home, "hasdefault"))
			if (err == nil) != tt.hasDeft {
				t.Errorf("DEFAULT set: %v, want %v", err == nil, tt.hasDeft)
			}
		})
	}
}

func TestDefaultDelivery(t *testing.T) {
	t.Parallel()
	u := newUser(t)
	u.maildir("Maildir")
	// An empty .qmail means the default delivery, x bit or not.
	u.write(".qmail", "", 0o755)
	r := u.deliver(delivery{defaultDelivery: "./Maildir/\n|echo hi > prog.out", msg: message})
	expect(t, r, 0, "did 1+0+1\n", "")
	// With a dash, an empty .qmail-ext also takes the default delivery.
	u.write(".qmail-x", "", 0o644)
	r = u.deliver(delivery{dash: "-", ext: "x", defaultDelivery: "./Maildir/", msg: message})
	expect(t, r, 0, "did 1+0+0\n", "")
}

func TestLoopDetection(t *testing.T) {
	t.Parallel()
	u := newUser(t)
	u.write(".qmail", "./mbox\n", 0o644)
	looping := "Received: x\nDelivered-To: bob@example.org\nSubject: y\n\nbody\n"
	expect(t, u.deliver(delivery{msg: looping}), 100, "", "This message is looping: it already has my Delivered-To line. (#5.4.6)\n")
	// The same line in the body, or another address's line, is fine.
	for _, msg := range []string{
		"Subject: y\n\nDelivered-To: bob@example.org\n",
		"Delivered-To: bob@example.org.evil\nDelivered-To: bobx@example.org\n\n",
		"Delivered-To: bob@example.org",
	} {
		expect(t, u.deliver(delivery{msg: msg}), 0, "did 1+0+0\n", "")
	}
}

func TestSafetyChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		setup  func(u *user)
		flags  []string
		code   int
		stdout string
		stderr string
	}{
		{"writable home", func(u *user) { os.Chmod(u.home, 0o757) }, nil, 111, "", "Uh-oh: home directory is writable. (#4.7.0)\n"},
		{"sticky home", func(u *user) { os.Chmod(u.home, 0o755|os.ModeSticky) }, nil, 111, "", "Home directory is sticky: user is editing his .qmail file. (#4.2.1)\n"},
		{"sticky home -n", func(u *user) {
			os.Chmod(u.home, 0o755|os.ModeSticky)
			u.write(".qmail", "./Mailbox\n", 0o644)
		}, []string{"-n"}, 0, "mbox ./Mailbox\ndid 1+0+0\n", "Warning: home directory is sticky.\n"},
		{"writable .qmail", func(u *user) { u.write(".qmail", "./Mailbox\n", 0o646) }, nil, 111, "", "Uh-oh: .qmail file is writable. (#4.7.0)\n"},
		{"blank first line", func(u *user) { u.write(".qmail", "\n./Mailbox\n", 0o644) }, nil, 111, "", "Uh-oh: first line of .qmail file is blank. (#4.2.1)\n"},
		{"x bit and file", func(u *user) { u.write(".qmail", "a@b.example\n./Mailbox\n", 0o744) }, nil, 111, "", "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\n"},
		{"x bit and program", func(u *user) { u.write(".qmail", "|true\n", 0o744) }, nil, 111, "", "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\n"},
		{"+list", func(u *user) { u.write(".qmail", "+list\n./Maildir/\n", 0o644) }, nil, 111, "", "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\n"},
		{"unreadable .qmail", func(u *user) { u.write(".qmail", "./Mailbox\n", 0o000) }, nil, 111, "", "Unable to open .qmail: access denied. (#4.3.0)\n"},
		{"-n listing", func(u *user) {
			u.write(".qmail", "# c\n./Maildir/\n/var/mail/bob  \n|preline cat\n&a@b.example\nc@d.example\n+x\n", 0o644)
		}, []string{"-n"}, 0, "maildir ./Maildir/\nmbox /var/mail/bob\nprogram preline cat\nforward a@b.example\nforward c@d.example\ndid 2+2+1\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := newUser(t)
			tt.setup(u)
			if tt.name == "unreadable .qmail" && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			expect(t, u.deliver(delivery{flags: tt.flags, msg: message}), tt.code, tt.stdout, tt.stderr)
			if _, err := os.Stat(filepath.Join(u.home, "Mailbox")); err == nil {
				t.Error("delivered anyway")
			}
		})
	}
}

func TestUnseekableMessage(t *testing.T) {
	t.Parallel()
	u := newUser(t)
	u.write(".qmail", "./Mailbox\n", 0o644)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pw.WriteString(message)
	pw.Close()
	defer pr.Close()
	r := run(t, testenv.Program(t, "qmail-local"), []string{"bob", u.home, "bob", "", "", "example.org", "s@x", "./Mailbox"}, pr, nil)
	expect(t, r, 111, "", "Unable to rewind message. (#4.3.0)\n")
}

func TestUsage(t *testing.T) {
	t.Parallel()
	r := run(t, testenv.Program(t, "qmail-local"), []string{"bob", "relative", "bob", "", "", "h", "s", "./Mailbox"}, nil, nil)
	expect(t, r, 100, "", "qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty\n")
}
