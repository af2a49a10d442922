package control

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWatch(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, home string) // before Reset
		change    func(t *testing.T, home string) // after Reset; nil: none
		watchable bool
		changed   bool
	}{
		{name: "nothing happens", watchable: true},
		{name: "file written in place", watchable: true, changed: true,
			change: func(t *testing.T, home string) { write(t, home, "rcpthosts", "example.org\n") }},
		{name: "file replaced by rename", watchable: true, changed: true,
			change: func(t *testing.T, home string) {
				write(t, home, "rcpthosts.tmp", "example.net\n")
				rename(t, filepath.Join(home, "control", "rcpthosts.tmp"), filepath.Join(home, "control", "rcpthosts"))
			}},
		{name: "file created", watchable: true, changed: true,
			change: func(t *testing.T, home string) { write(t, home, "databytes", "1000\n") }},
		{name: "file removed", watchable: true, changed: true,
			change: func(t *testing.T, home string) { remove(t, filepath.Join(home, "control", "me")) }},
		{name: "file made unreadable", watchable: true, changed: true,
			change: func(t *testing.T, home string) {
				if err := os.Chmod(filepath.Join(home, "control", "me"), 0); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "control is replaced", watchable: true, changed: true,
			change: func(t *testing.T, home string) {
				rename(t, filepath.Join(home, "control"), filepath.Join(home, "control.old"))
				mkdir(t, filepath.Join(home, "control"))
			}},
		{name: "control symlink pointed elsewhere", watchable: true, changed: true,
			setup: func(t *testing.T, home string) {
				rename(t, filepath.Join(home, "control"), filepath.Join(home, "etc1"))
				mkdir(t, filepath.Join(home, "etc2"))
				symlink(t, "etc1", filepath.Join(home, "control"))
			},
			change: func(t *testing.T, home string) {
				symlink(t, "etc2", filepath.Join(home, "control.new"))
				rename(t, filepath.Join(home, "control.new"), filepath.Join(home, "control"))
			}},
		{name: "a file is a symbolic link", watchable: false,
			setup: func(t *testing.T, home string) {
				os.WriteFile(filepath.Join(home, "hosts"), []byte("example.org\n"), 0o644)
				symlink(t, "../hosts", filepath.Join(home, "control", "rcpthosts"))
			}},
		{name: "a file has another link", watchable: false,
			setup: func(t *testing.T, home string) {
				if err := os.Link(filepath.Join(home, "control", "me"), filepath.Join(home, "me.copy")); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "another file is a symbolic link", watchable: true,
			setup: func(t *testing.T, home string) { symlink(t, "me", filepath.Join(home, "control", "unrelated")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			mkdir(t, filepath.Join(home, "control"))
			write(t, home, "me", "mail.example.org\n")
			if tt.setup != nil {
				tt.setup(t, home)
			}
			w := NewWatch(home, "me", "rcpthosts", "databytes")
			defer w.Close()
			if !w.Changed() {
				t.Fatal("a new watch is not Changed")
			}
			if got := w.Reset(); got != tt.watchable {
				t.Fatalf("Reset = %v, want %v", got, tt.watchable)
			}
			if w.Changed() {
				t.Fatal("Changed right after Reset")
			}
			if tt.change != nil {
				tt.change(t, home)
			}
			if got := w.Changed(); got != tt.changed {
				t.Fatalf("Changed = %v, want %v", got, tt.changed)
			}
			if tt.changed {
				if !w.Changed() {
					t.Error("a change is forgotten before the next Reset")
				}
				w.Reset()
				if w.Changed() {
					t.Error("Changed after the Reset that followed the change")
				}
				// The watch follows the new control/.
				write(t, home, "me", "other.example.org\n")
				if !w.Changed() {
					t.Error("a change in the new control/ is not seen")
				}
			}
		})
	}
}

func TestWatchWithoutControl(t *testing.T) {
	home := t.TempDir()
	w := NewWatch(home, "me")
	defer w.Close()
	if w.Reset() {
		t.Fatal("watchable without control/")
	}
	if !w.Changed() {
		t.Fatal("not Changed without control/")
	}
	w.Close()
	if w.Reset() || !w.Changed() {
		t.Fatal("a closed watch claims to watch")
	}
}

func write(t *testing.T, home, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(home, "control", name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
