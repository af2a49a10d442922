package remote

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestSettingsCache: a worker's settings follow every change of the
// control files and of resolv.conf from the next delivery on, and are
// not read again otherwise.
func TestSettingsCache(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "control")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "me"), "me.example\n")
	resolv := filepath.Join(home, "resolv.conf")
	write(resolv, "nameserver 192.0.2.1\n")

	c := NewSettingsCache(home)
	defer c.Close()
	get := func() (*settings, []string) {
		t.Helper()
		s, err := c.settings(home)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.dnsConfig(s, resolv)
		if err != nil {
			t.Fatal(err)
		}
		return s, d.Servers
	}

	first, servers := get()
	if first.helohost != "me.example" || !reflect.DeepEqual(servers, []string{"192.0.2.1:53"}) {
		t.Fatalf("helohost %q, servers %v", first.helohost, servers)
	}
	if again, _ := get(); again != first {
		t.Error("settings read again with nothing changed")
	}

	write(filepath.Join(dir, "helohost"), "helo.example\n")
	changed, _ := get()
	if changed == first || changed.helohost != "helo.example" {
		t.Errorf("after helohost was written: helohost %q", changed.helohost)
	}

	write(filepath.Join(dir, "dnsservers"), "192.0.2.2\n")
	if _, servers := get(); !reflect.DeepEqual(servers, []string{"192.0.2.2:53"}) {
		t.Errorf("after dnsservers was written: servers %v", servers)
	}
	if err := os.Remove(filepath.Join(dir, "dnsservers")); err != nil {
		t.Fatal(err)
	}
	get()

	// resolv.conf replaced by a rename, as resolvers write it.
	write(resolv+".new", "nameserver 192.0.2.3\n")
	if err := os.Rename(resolv+".new", resolv); err != nil {
		t.Fatal(err)
	}
	if _, servers := get(); !reflect.DeepEqual(servers, []string{"192.0.2.3:53"}) {
		t.Errorf("after resolv.conf was replaced: servers %v", servers)
	}
	// ... and rewritten in place.
	write(resolv, "nameserver 192.0.2.44\n")
	if _, servers := get(); !reflect.DeepEqual(servers, []string{"192.0.2.44:53"}) {
		t.Errorf("after resolv.conf was rewritten: servers %v", servers)
	}
}

// TestSettingsCacheUnwatchable: a control file that is a symbolic link
// is read for every delivery.
func TestSettingsCacheUnwatchable(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, "control")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(home, "helo")
	if err := os.WriteFile(target, []byte("one.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "helohost")); err != nil {
		t.Fatal(err)
	}
	c := NewSettingsCache(home)
	defer c.Close()
	s, err := c.settings(home)
	if err != nil || s.helohost != "one.example" {
		t.Fatalf("helohost %v, %v", s, err)
	}
	if err := os.WriteFile(target, []byte("two.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err = c.settings(home); err != nil || s.helohost != "two.example" {
		t.Errorf("after the link's target changed: %v, %v", s.helohost, err)
	}
}
