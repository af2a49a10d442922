package admin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/control/cdb"
	"github.com/goqmail/goqmail/internal/testenv"
)

// RebuildCDBs compiles every rules source with the real tcprules: a
// missing SMTP source gets a note, a missing optional one is passed over
// in silence, and each cdb holds its own source's rules.
func TestRebuildCDBsCompilesEveryRulesFile(t *testing.T) {
	t.Parallel()
	testenv.Tool(t, "tcprules", "ucspi-tcp")
	home, etc := t.TempDir(), t.TempDir()
	rules := func(name string, optional bool) RulesOptions {
		src := filepath.Join(etc, "tcp."+name)
		return RulesOptions{Source: src, CDB: src + ".cdb", Optional: optional}
	}
	smtp, pop3, qmtp, qmqp := rules("smtp", false), rules("pop3", true), rules("qmtp", true), rules("qmqp", true)
	sources := map[string]string{
		pop3.Source: "10.1.:allow,POP3=\"yes\"\n:deny\n",
		qmtp.Source: "10.2.:allow,QMTP=\"yes\"\n:allow\n",
	}
	for p, text := range sources {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := RebuildCDBs(context.Background(), home, []RulesOptions{smtp, pop3, qmtp, qmqp}, &out); err != nil {
		t.Fatalf("RebuildCDBs: %v\n%s", err, out.String())
	}
	want := smtp.Source + " does not exist: no rules to compile.\n" +
		"Reloaded " + pop3.CDB + ".\n" + "Reloaded " + qmtp.CDB + ".\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, missing := range []string{smtp.CDB, qmqp.CDB} {
		if _, err := os.Stat(missing); err == nil {
			t.Errorf("%s made without a source", missing)
		}
	}
	for _, c := range []struct {
		path, key, wantPrefix string
	}{
		{pop3.CDB, "10.1.", "+POP3=yes"},
		{qmtp.CDB, "10.2.", "+QMTP=yes"},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want world-readable 0644", c.path, fi.Mode().Perm())
		}
		db, err := cdb.Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		v, ok, err := db.Get([]byte(c.key))
		db.Close()
		if err != nil || !ok || !strings.HasPrefix(string(v), c.wantPrefix) {
			t.Errorf("%s[%q] = %q, %v, %v; want %q...", c.path, c.key, v, ok, err, c.wantPrefix)
		}
	}

	// A source tcprules rejects fails the rebuild and names tcprules.
	if err := os.WriteFile(qmqp.Source, []byte("1.2.3.4:frobnicate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := RebuildCDBs(context.Background(), home, []RulesOptions{qmqp}, &out)
	if err == nil || !strings.Contains(err.Error(), "tcprules") {
		t.Errorf("bad QMQP rules: %v", err)
	}
}
