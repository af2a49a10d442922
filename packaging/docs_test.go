package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// docBlock returns the n-th (from 0) fenced code block after the heading
// in one of the docs/ pages, so that the tests run what the page shows.
func docBlock(t *testing.T, page, heading string, n int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("%s: no heading %q", page, heading)
	}
	text = text[i:]
	for ; ; n-- {
		start := strings.Index(text, "\n```")
		if start < 0 {
			t.Fatalf("%s: %q has too few code blocks", page, heading)
		}
		text = text[start+4:]
		text = text[strings.IndexByte(text, '\n')+1:] // the language tag
		end := strings.Index(text, "\n```")
		if end < 0 {
			t.Fatalf("%s: unterminated code block", page)
		}
		if n == 0 {
			return text[:end+1]
		}
		text = text[end+4:]
	}
}

// runCheck runs an RCPTCHECK script as qmail-smtpd would: no arguments,
// SENDER and RECIPIENT in the environment, fd 4 for a reply line. It
// returns the exit code and what was written to fd 4.
func runCheck(t *testing.T, script, recipient string) (int, string) {
	t.Helper()
	replyR, replyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer replyR.Close()
	cmd := exec.Command(script)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SENDER=someone@remote.example", "RECIPIENT=" + recipient}
	cmd.ExtraFiles = []*os.File{nil, replyW} // fd 3 closed, fd 4 the reply
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	replyW.Close()
	if err != nil {
		t.Fatal(err)
	}
	reply := new(bytes.Buffer)
	reply.ReadFrom(replyR)
	err = cmd.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if stderr.Len() > 0 {
		t.Logf("%s for %q wrote: %s", filepath.Base(script), recipient, stderr.String())
	}
	return code, reply.String()
}

func writeScript(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRcptcheckLocalUsersExample runs docs/rcptcheck.md's first example
// against a home with one local domain and one alias.
func TestRcptcheckLocalUsersExample(t *testing.T) {
	t.Parallel()
	script := docBlock(t, "rcptcheck.md", "## Example: local users and aliases", 0)
	home := t.TempDir()
	if !strings.Contains(script, "home=/var/qmail\n") {
		t.Fatal("the example no longer sets home=/var/qmail")
	}
	script = strings.Replace(script, "home=/var/qmail\n", "home="+home+"\n", 1)
	for _, d := range []string{"control", "alias"} {
		if err := os.Mkdir(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"control/locals": "example.org\nmail.example.org\n", "alias/.qmail-info": "&root\n", "alias/.qmail-x:y": "&root\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := writeScript(t, t.TempDir(), "rcptcheck", script)
	marker := filepath.Join(t.TempDir(), "pwned")
	cases := []struct {
		recipient string
		want      int
	}{
		{"root@example.org", 0},      // a system account
		{"root-list@example.org", 0}, // with an extension
		{"ROOT@Mail.Example.ORG", 0}, // case does not matter
		{"info@example.org", 0},      // an alias
		{"x.y@example.org", 0},       // dots become colons in .qmail names
		{"nosuchuser@example.org", 100},
		{"anyone@elsewhere.example", 0}, // not a local domain
		{"../../etc/passwd@example.org", 100},
		{"$(touch " + marker + ")@example.org", 100},
		{"`touch " + marker + "`@example.org", 100},
		{"@example.org", 100},
		{"nodomain", 0},
	}
	for _, c := range cases {
		if got, _ := runCheck(t, check, c.recipient); got != c.want {
			t.Errorf("RECIPIENT=%q: exit %d, want %d", c.recipient, got, c.want)
		}
	}
	// With .qmail-default the alias user takes everything.
	if err := os.WriteFile(filepath.Join(home, "alias/.qmail-default"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := runCheck(t, check, "nosuchuser@example.org"); got != 0 {
		t.Errorf("with .qmail-default: exit %d, want 0", got)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a recipient address ran a command")
	}
}

// TestRcptcheckCdbExample builds the cdb the way docs/rcptcheck.md says,
// with freecdb's cdbmake, and checks through the page's cdbget script.
func TestRcptcheckCdbExample(t *testing.T) {
	t.Parallel()
	testenv.Tool(t, "cdbmake", "freecdb")
	testenv.Tool(t, "cdbget", "freecdb")
	build := docBlock(t, "rcptcheck.md", "## Example: a list of valid addresses in a cdb", 0)
	check := docBlock(t, "rcptcheck.md", "## Example: a list of valid addresses in a cdb", 1)
	dir := t.TempDir()
	rename := strings.NewReplacer("/etc/qmail-valid-rcpt", filepath.Join(dir, "qmail-valid-rcpt"))
	if err := os.WriteFile(filepath.Join(dir, "qmail-valid-rcpt"), []byte("Alice@Example.org\nbob@example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-ec", rename.Replace(build))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the cdb as the page says: %v\n%s", err, out)
	}
	script := writeScript(t, dir, "rcptcheck", rename.Replace(check))
	for recipient, want := range map[string]int{
		"alice@example.org": 0, "ALICE@EXAMPLE.ORG": 0, "bob@example.org": 0,
		"carol@example.org": 100, "": 100,
	} {
		if got, _ := runCheck(t, script, recipient); got != want {
			t.Errorf("RECIPIENT=%q: exit %d, want %d", recipient, got, want)
		}
	}
	// A missing cdb is a temporary failure, not a refusal.
	if err := os.Remove(filepath.Join(dir, "qmail-valid-rcpt.cdb")); err != nil {
		t.Fatal(err)
	}
	if got, _ := runCheck(t, script, "alice@example.org"); got != 111 {
		t.Errorf("without the cdb: exit %d, want 111 (any other code accepts or refuses)", got)
	}
}

// TestRcptcheckReplyExample checks the page's custom reply: exit 100 and
// a line qmail-smtpd accepts as a reply (three digits, a space,
// printable ASCII).
func TestRcptcheckReplyExample(t *testing.T) {
	t.Parallel()
	script := writeScript(t, t.TempDir(), "rcptcheck", docBlock(t, "rcptcheck.md", "## Example: a reply of your own", 0))
	code, reply := runCheck(t, script, "someone@old.example.org")
	if code != 100 || reply != "551 5.1.6 this domain has moved to example.org\n" {
		t.Errorf("got exit %d, reply %q", code, reply)
	}
	if code, reply := runCheck(t, script, "someone@example.org"); code != 0 || reply != "" {
		t.Errorf("other domain: exit %d, reply %q", code, reply)
	}
}
