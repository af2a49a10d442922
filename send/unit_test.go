package send

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/queue"
)

func TestRewrite(t *testing.T) {
	rw := NewRewriter("default.example",
		[]string{"local.example", "Upper.Example"},
		[]string{"hack.example", "local.example"},
		[]string{"virt.example:v", "user@full.example:full", ".sub.example:sub", "none.example:", "dup.example:first", "dup.example:second", "nocolon"})
	tests := []struct {
		in    string
		out   string
		local bool
	}{
		{"bob", "bob@default.example", false},
		{"bob@local.example", "bob@local.example", true},
		{"Bob@upper.EXAMPLE", "Bob@upper.EXAMPLE", true},
		{"bob@remote.example", "bob@remote.example", false},
		{"a%b%local.example@hack.example", "a@b", false}, // local.example is in percenthack too
		{"a%b%local.example@other.example", "a%b%local.example@other.example", false},
		{"a%upper.example@hack.example", "a@upper.example", true},
		{"a%remote.example@hack.example", "a@remote.example", false},
		{"x%y@local.example", "x@y", false}, // percenthack applies to local domains too
		{"nohack%x@remote.example", "nohack%x@remote.example", false},
		{"carol@virt.example", "v-carol@virt.example", true},
		{"carol@VIRT.example", "v-carol@VIRT.example", true},
		{"user@full.example", "full-user@full.example", true},
		{"other@full.example", "other@full.example", false},
		{"a@b.sub.example", "sub-a@b.sub.example", true},
		{"a@sub.example", "a@sub.example", false},
		{"a@none.example", "a@none.example", false},
		{"a@dup.example", "second-a@dup.example", true},
		{"", "@default.example", false},
	}
	for _, tc := range tests {
		out, local := rw.Rewrite(tc.in)
		if out != tc.out || local != tc.local {
			t.Errorf("Rewrite(%q) = %q, %v; want %q, %v", tc.in, out, local, tc.out, tc.local)
		}
	}
	catchAll := NewRewriter("d", nil, nil, []string{":all", "skip.example:"})
	for in, want := range map[string]string{"a@x.example": "all-a@x.example", "a@skip.example": "a@skip.example"} {
		if out, _ := catchAll.Rewrite(in); out != want {
			t.Errorf("catch-all Rewrite(%q) = %q, want %q", in, out, want)
		}
	}
}

func TestStripVirtualPrepend(t *testing.T) {
	rw := NewRewriter("d", nil, nil, []string{"virt.example:v", ".sub.example:s"})
	for in, want := range map[string]string{
		"v-carol@virt.example": "carol@virt.example",
		"x-carol@virt.example": "x-carol@virt.example",
		"s-a@b.sub.example":    "a@b.sub.example",
		"v-a@other.example":    "v-a@other.example",
		"noat":                 "noat",
	} {
		if got := rw.stripVirtualPrepend(in); got != want {
			t.Errorf("stripVirtualPrepend(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBounceParagraph(t *testing.T) {
	tests := []struct{ recip, report, want string }{
		{"a@b", "Sorry. (#5.1.1)\n", "<a@b>:\nSorry. (#5.1.1)\n\n"},
		{"a@b", "no newline", "<a@b>:\nno newline\n\n"},
		{"a@b", "", "<a@b>:\n\n"},
		// qmail turns the second newline of a pair into '/', which
		// joins the blank line to the next one.
		{"a\nb@c", "x\n\ny\n", "<a_b@c>:\nx\n/y\n\n"},
		{"a@b", "x\n\n\ny", "<a@b>:\nx\n//y\n\n"},
	}
	for _, tc := range tests {
		if got := BounceParagraph(tc.recip, tc.report); got != tc.want {
			t.Errorf("BounceParagraph(%q, %q) = %q, want %q", tc.recip, tc.report, got, tc.want)
		}
	}
}

func TestQuoteAddr(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"a@b":             "a@b",
		"a b@c":           `"a b"@c`,
		".a@b":            `".a"@b`,
		"a..b@c":          `"a..b"@c`,
		`a"\b@c`:          `"a\"\\b"@c`,
		"#@[]":            "#@[]",
		"nobody":          "nobody",
		"x(y)@z":          `"x(y)"@z`,
		"\xc3\xa9@b":      "\"\xc3\xa9\"@b",
		"owner-@host-@[]": `"owner-@host-"@[]`,
	} {
		if got := quoteAddr(in); got != want {
			t.Errorf("quoteAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVERP(t *testing.T) {
	for _, tc := range []struct{ sender, recip, want string }{
		{"list-owner-@example.com-@[]", "joe@remote.example", "list-owner-joe=remote.example@example.com"},
		{"list-owner@example.com", "joe@remote.example", "list-owner@example.com"},
		{"x-@[]", "joe@remote.example", "x-@[]"},
		{"o-@h-@[]", "noat", "o-@h-@[]"},
		{"", "joe@r", ""},
	} {
		if got := verpSender(tc.sender, tc.recip); got != tc.want {
			t.Errorf("verpSender(%q, %q) = %q, want %q", tc.sender, tc.recip, got, tc.want)
		}
	}
}

func TestRetrySchedule(t *testing.T) {
	birth := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		age  int64
		c    int
		want int64
	}{
		{0, chanLocal, 100}, {99, chanLocal, 361}, {100, chanLocal, 400}, {400, chanLocal, 900},
		{0, chanRemote, 400}, {400, chanRemote, 1600}, {1599, chanRemote, 3481}, {1600, chanRemote, 3600},
	} {
		got := nextRetry(birth, birth.Add(time.Duration(tc.age)*time.Second), tc.c)
		if got.Sub(birth) != time.Duration(tc.want)*time.Second {
			t.Errorf("age %d channel %d: retry at %v, want %ds", tc.age, tc.c, got.Sub(birth), tc.want)
		}
	}
	for x := int64(0); x < 20000; x++ {
		r := isqrt(x)
		if r*r > x || (r+1)*(r+1) <= x {
			t.Fatalf("isqrt(%d) = %d", x, r)
		}
	}
}

func TestLogSafe(t *testing.T) {
	if got := logSafe("did 0+0+1\n\x01%é~!"); got != "did_0+0+1/__"+"__~!" {
		t.Errorf("logSafe = %q", got)
	}
}

func TestBounceHeader(t *testing.T) {
	now := time.Date(2026, 3, 5, 4, 6, 7, 0, time.UTC)
	got := BounceHeader(now, "MAILER-DAEMON", "h.example", "a b@c", "a b@c")
	want := "Date: 5 Mar 2026 04:06:07 -0000\nFrom: MAILER-DAEMON@h.example\nTo: \"a b\"@c\nSubject: failure notice\n\n" +
		"Hi. This is the qmail-send program at h.example.\n" +
		"I'm afraid I wasn't able to deliver your message to the following addresses.\n" +
		"This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
	if got != want {
		t.Errorf("BounceHeader:\n%q\nwant\n%q", got, want)
	}
	if got := BounceSeparator(""); got != "--- Below this line is the original bounce.\n\nReturn-Path: <>\n" {
		t.Errorf("double bounce separator %q", got)
	}
}

func FuzzRewrite(f *testing.F) {
	for _, s := range []string{"bob", "a%b%c@hack.example", "x@virt.example", "@", "%@hack.example", "a@b.sub.example"} {
		f.Add(s)
	}
	rw := NewRewriter("d.example", []string{"local.example"}, []string{"hack.example"}, []string{"virt.example:v", ".sub.example:s", ":all"})
	f.Fuzz(func(t *testing.T, recip string) {
		out, local := rw.Rewrite(recip)
		if !strings.Contains(out, "@") {
			t.Fatalf("Rewrite(%q) = %q: no @", recip, out)
		}
		if len(out) > len(recip)+len("all-")+len("@d.example") {
			t.Fatalf("Rewrite(%q) = %q grew too much", recip, out)
		}
		if !local && strings.HasPrefix(out, "all-") && !strings.HasPrefix(recip, "all-") {
			t.Fatalf("Rewrite(%q) = %q, remote with a prepend", recip, out)
		}
	})
}

func FuzzBounceParagraph(f *testing.F) {
	f.Add("a@b", "x\n\ny")
	f.Add("a\nb", "")
	f.Fuzz(func(t *testing.T, recip, report string) {
		p := BounceParagraph(recip, report)
		if !strings.HasSuffix(p, "\n\n") && !strings.HasSuffix(p, ">:\n\n") {
			t.Fatalf("paragraph %q does not end with a blank line", p)
		}
		// qmail leaves the report's own last newline alone, so only the
		// text before the final two bytes is free of blank lines.
		if strings.Contains(p[:len(p)-2], "\n\n") {
			t.Fatalf("paragraph %q has an inner blank line", p)
		}
	})
}

func TestRereadOnHUP(t *testing.T) {
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "control"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(home, "control", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("locals", "old.example\n")
	write("percenthack", "hack.example\n")
	var log strings.Builder
	s := &Sender{cfg: Config{Home: home}, log: &logger{w: &log}}
	s.set = &settings{rw: NewRewriter("noat.example", []string{"old.example"}, []string{"hack.example"}, nil)}
	write("locals", "new.example\n")
	write("virtualdomains", "virt.example:v\n")
	write("envnoathost", "changed.example\n")
	write("percenthack", "\n")
	s.reread()
	for in, want := range map[string]string{
		"a@new.example":    "a@new.example",
		"a@old.example":    "a@old.example",
		"a@virt.example":   "v-a@virt.example",
		"a%b@hack.example": "a@b",
		"a":                "a@noat.example",
	} {
		if got, _ := s.set.rw.Rewrite(in); got != want {
			t.Errorf("after HUP Rewrite(%q) = %q, want %q", in, got, want)
		}
	}
	if _, local := s.set.rw.Rewrite("a@old.example"); local {
		t.Errorf("old.example is still local after HUP")
	}
	if log.Len() != 0 {
		t.Errorf("log: %q", log.String())
	}
}

// TestSweep checks the 36-hour sweep with a fake qmail-clean: only a
// message file that is old and has neither info nor todo is handed over.
func TestSweep(t *testing.T) {
	home := t.TempDir()
	qdir := filepath.Join(home, "queue")
	if err := queue.Create(qdir, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := now.Add(-37 * time.Hour)
	mess := func(id int, atime time.Time) {
		p := filepath.Join(qdir, "mess", strconv.Itoa(id%queue.Split), strconv.Itoa(id))
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, atime, atime); err != nil {
			t.Fatal(err)
		}
	}
	mess(100, old) // leftover: swept
	mess(101, now) // young: kept
	mess(102, old) // has info: kept
	mess(103, old) // has todo: kept
	if err := os.WriteFile(filepath.Join(qdir, "info", strconv.Itoa(102%queue.Split), "102"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(qdir, "todo", "103"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var requests strings.Builder
	var log strings.Builder
	s := &Sender{
		cfg:        Config{Home: home, Clean: &requests},
		qdir:       qdir,
		log:        &logger{w: &log},
		now:        func() time.Time { return now },
		msgs:       map[uint64]*message{},
		cleanAlive: true,
	}
	s.sweep()
	if requests.String() != "foop/100\x00" {
		t.Errorf("qmail-clean got %q, want foop/100 only", requests.String())
	}
	s.cleaned(true)
	if log.Len() != 0 {
		t.Errorf("log: %q", log.String())
	}
	// The fake qmail-clean removed nothing: the next sweep asks again,
	// and a failure is logged when qmail-clean's answer comes.
	s.sweep()
	if log.Len() != 0 {
		t.Errorf("logged before the answer: %q", log.String())
	}
	s.cleaned(false)
	if want := "warning: qmail-clean unable to clean up foop/100\n"; log.String() != want {
		t.Errorf("log %q, want %q", log.String(), want)
	}
}

// writes records each Write separately.
type writes struct{ got []string }

func (w *writes) Write(p []byte) (int, error) {
	w.got = append(w.got, string(p))
	return len(p), nil
}

// The logger writes each line at once, except while the loop batches:
// then the lines go out together at a flush, or when the batch is big,
// and always as whole lines.
func TestLoggerBatches(t *testing.T) {
	w := &writes{}
	l := &logger{w: w}
	l.line("status: local 0/10 remote 0/20")
	l.batch(true)
	l.line("new msg ", "1")
	l.line("info msg 1: bytes 4 from <a@b> qp 1 uid 2")
	if len(w.got) != 1 {
		t.Fatalf("writes before the flush: %q", w.got)
	}
	l.flush()
	l.flush()
	l.line("end msg 1")
	l.batch(false)
	l.line("status: exiting")
	want := []string{
		"status: local 0/10 remote 0/20\n",
		"new msg 1\ninfo msg 1: bytes 4 from <a@b> qp 1 uid 2\n",
		"end msg 1\n",
		"status: exiting\n",
	}
	if !reflect.DeepEqual(w.got, want) {
		t.Errorf("writes %q, want %q", w.got, want)
	}

	w.got = nil
	l.batch(true)
	line := strings.Repeat("x", 999)
	for i := 0; i < 2*logBatchMax/1000; i++ {
		l.line(line)
	}
	if len(w.got) == 0 {
		t.Fatalf("a batch of %d bytes was not written", 2*logBatchMax)
	}
	for _, b := range w.got {
		if len(b)%1000 != 0 || !strings.HasSuffix(b, "\n") {
			t.Errorf("a write of %d bytes that is not whole lines", len(b))
		}
	}
}

// countingWriter records each Write as one element.
type countingWriter struct{ writes []string }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestCleanRequestsBatched: while the main loop batches, requests for
// qmail-clean wait for flushOutput and go out in one write; answers that
// arrive together are handed to their requests in order.
func TestCleanRequestsBatched(t *testing.T) {
	s := newScheduleSender(t, time.Unix(1_800_000_000, 0))
	var clean countingWriter
	s.cfg.Clean = &clean
	s.cleanBatching = true
	var got []string
	for _, what := range []string{"todo/1", "foop/2", "todo/3"} {
		s.cleanup(what, func(ok bool) { got = append(got, what+":"+strconv.FormatBool(ok)) })
	}
	if len(clean.writes) != 0 {
		t.Fatalf("written before the flush: %q", clean.writes)
	}
	s.flushOutput()
	if want := []string{"todo/1\x00foop/2\x00todo/3\x00"}; !reflect.DeepEqual(clean.writes, want) {
		t.Fatalf("writes %q, want %q", clean.writes, want)
	}
	s.handle(event{kind: evCleaned, replies: "+!"})
	s.handle(event{kind: evCleaned, replies: "+"})
	if want := []string{"todo/1:true", "foop/2:false", "todo/3:true"}; !reflect.DeepEqual(got, want) {
		t.Errorf("answers %q, want %q", got, want)
	}

	// Outside the loop a request goes out at once.
	s.cleanBatching = false
	s.cleanup("foop/4", func(bool) {})
	if len(clean.writes) != 2 || clean.writes[1] != "foop/4\x00" {
		t.Errorf("writes %q, want foop/4 at once", clean.writes)
	}
}
