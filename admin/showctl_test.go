package admin

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

func TestShowCtl(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t)
	for name, content := range map[string]string{
		"badmailfrom":       "spam@example.com\n# comment\n\n@bad.example  \n",
		"concurrencyremote": "5\n",
		"databytes":         "lots\n", // not a number: the default
		"smtpgreeting":      "mx\x01 ESMTP\n",
		"morercpthosts":     "other.example\n",
		"authsenders":       "a@b.example:relay.example|user|secret\n",
		"servercert.pem":    "x",
		"zzz-unknown":       "1\n",
		"defaultdelivery":   "./Maildir/\n",
	} {
		testenv.WriteControl(t, home, name, content)
	}
	var b bytes.Buffer
	if err := ShowCtl(&b, home, &Ids{Alias: 7, Qmaild: 8, Qmaill: 9, Qmailp: 10, Qmailq: 11, Qmailr: 12, Qmails: 13, Qmail: 20, Nofiles: 21}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	head := "qmail home directory: " + home + ".\nuser-ext delimiter: -.\npaternalism (in decimal): 2.\n" +
		"silent concurrency limit: 120.\nsubdirectory split: 23.\nuser ids: 7, 8, 9, 0, 10, 11, 12, 13.\ngroup ids: 21, 20.\n"
	if !strings.HasPrefix(out, head) {
		t.Errorf("head:\n%s\nwant\n%s", out[:min(len(out), len(head)+50)], head)
	}
	wants := []string{
		"\nbadmailfrom: \nspam@example.com not accepted in MAIL FROM.\n@bad.example not accepted in MAIL FROM.\n",
		"\nbouncefrom: (Default.) Bounce user name is MAILER-DAEMON.\n",
		"\nbouncehost: (Default.) Bounce host name is " + testenv.Me + ".\n",
		"\nconcurrencylocal: (Default.) Local concurrency is 10.\n",
		"\nconcurrencyremote: Remote concurrency is 5.\n",
		"\ndatabytes: (Default.) SMTP DATA limit is 0 bytes.\n",
		"\ndoublebounceto: (Default.) 2B recipient user: postmaster.\n",
		"\nlocals: \nMessages for " + testenv.Me + " are delivered locally.\n",
		"\nme: My name is " + testenv.Me + ".\n",
		"\npercenthack: (Default.) The percent hack is not allowed.\n",
		"\nqmqpservers: (Default.) No QMQP servers.\n",
		"\nqueuelifetime: (Default.) Message lifetime in the queue is 604800 seconds.\n",
		"\nrcpthosts: \nSMTP clients may send messages to recipients at " + testenv.Me + ".\n",
		"\nmorercpthosts: \nSMTP clients may send messages to recipients at other.example.\n",
		"\nmorercpthosts.cdb: Oops! morercpthosts exists but morercpthosts.cdb doesn't.\n",
		"\nsmtpgreeting: SMTP greeting: 220 mx? ESMTP.\n",
		"\nsmtproutes: (Default.) No artificial SMTP routes.\n",
		"\ntimeoutsmtpd: (Default.) SMTP server data timeout is 1200 seconds.\n",
		"\nvirtualdomains: (Default.) No virtual domains.\n",
		"\ndefaultdelivery: (Life with qmail convention) ",
		"Value: ./Maildir/.\n",
		"\nauthsenders: (Debian patch 0008) ",
		"Line: a@b.example:relay.example|user|(hidden)\n",
		"\nservercert.pem: (Debian patch 0010) ",
		"\nzzz-unknown: I have no idea what this file does.\n",
	}
	last := 0
	for _, w := range wants {
		i := strings.Index(out[last:], w)
		if i < 0 {
			t.Errorf("missing, or out of order: %q", w)
			continue
		}
		last += i
	}
	if strings.Contains(out, "secret") {
		t.Error("the authsenders password is shown")
	}
	if strings.Contains(out, "\nclientca.pem:") {
		t.Error("a patch file that does not exist is described")
	}

	// Without rcpthosts morercpthosts does not matter; an up-to-date cdb.
	os.Remove(filepath.Join(home, "control", "rcpthosts"))
	testenv.WriteControl(t, home, "morercpthosts.cdb", "")
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(home, "control", "morercpthosts.cdb"), later, later)
	b.Reset()
	ShowCtl(&b, home, nil)
	for _, w := range []string{
		"user ids: none",
		"\nrcpthosts: (Default.) SMTP clients may send messages to any recipient.\n",
		"\nmorercpthosts: \nNo rcpthosts; doesn't matter that morercpthosts has other.example.\n",
		"\nmorercpthosts.cdb: Modified recently enough; hopefully up to date.\n",
	} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("missing %q in\n%s", w, b.String())
		}
	}

	// The program prints the same control file report.
	cmd := exec.Command(testenv.Program(t, "qmail-showctl"))
	cmd.Env = append(os.Environ(), "QMAILHOME="+home)
	prog, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := strings.Cut(b.String(), "\nbadmailfrom:")
	_, got, _ := strings.Cut(string(prog), "\nbadmailfrom:")
	if got != want || !strings.HasPrefix(string(prog), "qmail home directory: "+home+".\n") {
		t.Errorf("qmail-showctl printed\n%s\nwant the report\n%s", prog, b.String())
	}

	// No control directory: exit 111.
	cmd = exec.Command(testenv.Program(t, "qmail-showctl"))
	cmd.Env = append(os.Environ(), "QMAILHOME="+t.TempDir())
	out2, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 111 || !strings.Contains(string(out2), "Oops! Unable to read") {
		t.Errorf("qmail-showctl without control/: %v %q", err, out2)
	}
}
