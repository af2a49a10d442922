package smtpd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/goqmail/goqmail/control/cdb"
)

// configHome is a qmail home whose control/ accepts mail for
// listed.example, and for more.example through morercpthosts.cdb.
func configHome(t *testing.T) (home, dir string) {
	t.Helper()
	home = t.TempDir()
	dir = filepath.Join(home, "control")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeControl(t, dir, "me", "me.example\n")
	writeControl(t, dir, "rcpthosts", "listed.example\n")
	err := cdb.WriteFile(filepath.Join(dir, "morercpthosts.cdb"), func(w *cdb.Writer) error {
		return w.Add([]byte("more.example"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	return home, dir
}

func writeControl(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func noEnv(string) (string, bool) { return "", false }

func mustConfig(t *testing.T, c *ConfigCache, lookup LookupEnv) (*Config, func()) {
	t.Helper()
	cfg, release, err := c.Config(lookup)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, release
}

func allowed(t *testing.T, cfg *Config, addr string) bool {
	t.Helper()
	ok, err := cfg.RcptHosts.Allowed(addr)
	if err != nil {
		t.Fatalf("Allowed(%q): %v", addr, err)
	}
	return ok
}

// TestConfigCacheSeesChanges: a change to a control file applies to the
// next session, as when every session reads the files.
func TestConfigCacheSeesChanges(t *testing.T) {
	home, dir := configHome(t)
	c := NewConfigCache(home)
	defer c.Close()

	cfg, release := mustConfig(t, c, noEnv)
	if cfg.Greeting != "me.example" || !allowed(t, cfg, "a@listed.example") || allowed(t, cfg, "a@new.example") {
		t.Fatalf("first config: greeting %q, rcpthosts wrong", cfg.Greeting)
	}
	release()

	writeControl(t, dir, "smtpgreeting", "greeting.example\n")
	writeControl(t, dir, "rcpthosts.new", "new.example\n")
	if err := os.Rename(filepath.Join(dir, "rcpthosts.new"), filepath.Join(dir, "rcpthosts")); err != nil {
		t.Fatal(err)
	}
	cfg, release = mustConfig(t, c, noEnv)
	defer release()
	if cfg.Greeting != "greeting.example" {
		t.Errorf("greeting %q after smtpgreeting was written", cfg.Greeting)
	}
	if !allowed(t, cfg, "a@new.example") || allowed(t, cfg, "a@listed.example") {
		t.Error("rcpthosts replaced by rename is not seen")
	}
}

// TestConfigCacheSharesUntilChange: sessions share one reading of the
// files; one still running after a change keeps its morercpthosts.cdb
// open until it ends, while new sessions get the new files.
func TestConfigCacheSharesUntilChange(t *testing.T) {
	home, dir := configHome(t)
	c := NewConfigCache(home)
	defer c.Close()

	first, releaseFirst := mustConfig(t, c, noEnv)
	second, releaseSecond := mustConfig(t, c, noEnv)
	if first.RcptHosts != second.RcptHosts {
		t.Fatal("two sessions with nothing changed read the files twice")
	}
	releaseSecond()

	writeControl(t, dir, "rcpthosts", "other.example\n")
	third, releaseThird := mustConfig(t, c, noEnv)
	defer releaseThird()
	if third.RcptHosts == first.RcptHosts {
		t.Fatal("a session after a change shares the old files")
	}
	// The cache let go of the old reading: the first session is its last
	// user, and its morercpthosts.cdb still answers.
	if !allowed(t, first, "a@more.example") {
		t.Error("morercpthosts.cdb of a running session stopped answering")
	}
	releaseFirst()
	if _, err := first.RcptHosts.Allowed("a@more.example"); err == nil {
		t.Error("morercpthosts.cdb still open after its last session ended")
	}
}

// TestConfigCacheEnvironmentPerSession: the files are shared, the
// connection's variables are each session's own.
func TestConfigCacheEnvironmentPerSession(t *testing.T) {
	home, dir := configHome(t)
	writeControl(t, dir, "databytes", "1000\n")
	c := NewConfigCache(home)
	defer c.Close()
	withEnv := func(k string) (string, bool) {
		switch k {
		case "DATABYTES":
			return "50", true
		case "RELAYCLIENT":
			return "", true
		}
		return "", false
	}
	a, releaseA := mustConfig(t, c, withEnv)
	defer releaseA()
	b, releaseB := mustConfig(t, c, noEnv)
	defer releaseB()
	if a.DataBytes != 50 || !a.Env.IsRelayClient {
		t.Errorf("session with DATABYTES=50 and RELAYCLIENT: databytes %d, relay client %v", a.DataBytes, a.Env.IsRelayClient)
	}
	if b.DataBytes != 1000 || b.Env.IsRelayClient {
		t.Errorf("session without variables: databytes %d, relay client %v", b.DataBytes, b.Env.IsRelayClient)
	}
}

// TestConfigCacheSymlinkedFile: a control file that is a symbolic link
// is read for every session, since a change to its target is not seen
// in control/.
func TestConfigCacheSymlinkedFile(t *testing.T) {
	home, dir := configHome(t)
	target := filepath.Join(home, "hosts")
	if err := os.WriteFile(target, []byte("one.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "rcpthosts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "rcpthosts")); err != nil {
		t.Fatal(err)
	}
	c := NewConfigCache(home)
	defer c.Close()
	cfg, release := mustConfig(t, c, noEnv)
	if !allowed(t, cfg, "a@one.example") {
		t.Fatal("rcpthosts through a symbolic link not read")
	}
	release()
	if err := os.WriteFile(target, []byte("two.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, release = mustConfig(t, c, noEnv)
	defer release()
	if !allowed(t, cfg, "a@two.example") {
		t.Error("a change to the target of a symbolic link is not seen")
	}
}

// TestConfigCacheError: unreadable controls refuse the session, and are
// read again for the next one.
func TestConfigCacheError(t *testing.T) {
	home, dir := configHome(t)
	if err := os.Remove(filepath.Join(dir, "me")); err != nil {
		t.Fatal(err)
	}
	c := NewConfigCache(home)
	defer c.Close()
	if _, _, err := c.Config(noEnv); err != ErrNoGreeting {
		t.Fatalf("without me and smtpgreeting: %v, want ErrNoGreeting", err)
	}
	writeControl(t, dir, "me", "back.example\n")
	cfg, release := mustConfig(t, c, noEnv)
	defer release()
	if cfg.Greeting != "back.example" {
		t.Errorf("greeting %q", cfg.Greeting)
	}
}
