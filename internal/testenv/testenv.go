// Package testenv gives tests the built goqmail programs and throwaway
// qmail homes, so integration tests run the real binaries unprivileged.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/goqmail/goqmail/queue"
)

// builds caches programs built by this test process: building once per
// process keeps a package's tests from compiling the same command twice.
var builds struct {
	sync.Mutex
	dir  string
	done map[string]bool
}

// Program returns the path of the built program name (cmd/<name>). With
// $GOQMAIL_BIN set (make test sets it to the freshly built bin/), the
// program is taken from there; otherwise it is built once per process.
func Program(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv("GOQMAIL_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("GOQMAIL_BIN: %v (run make first)", err)
		}
		return p
	}
	builds.Lock()
	defer builds.Unlock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "goqmail-bin-")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir, builds.done = dir, map[string]bool{}
	}
	out := filepath.Join(builds.dir, name)
	if !builds.done[name] {
		cmd := exec.Command("go", "build", "-o", out, "./cmd/"+name)
		cmd.Dir = ModuleRoot(t)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, b)
		}
		builds.done[name] = true
	}
	return out
}

// ModuleRoot is the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Me is the host name written to control/me of a test home.
const Me = "testhost.example"

// NewHome makes an unprivileged qmail home in a temporary directory: bin/
// with the named programs, control/me, locals and rcpthosts set to Me, an
// empty queue with qmail's layout, users/ and alias/.
func NewHome(t testing.TB, programs ...string) string {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{"bin", "control", "users", "alias"} {
		if err := os.Mkdir(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range programs {
		if err := os.Symlink(Program(t, name), filepath.Join(home, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"me", "locals", "rcpthosts"} {
		WriteControl(t, home, f, Me+"\n")
	}
	if err := queue.Create(filepath.Join(home, "queue"), nil); err != nil {
		t.Fatal(err)
	}
	return home
}

// WriteControl writes control/name in home.
func WriteControl(t testing.TB, home, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(home, "control", name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Tool returns the path of a program the tests use from a Debian package.
// In CI (.ci/run installs the package) a missing program fails the test;
// elsewhere the test is skipped.
func Tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (Debian package %s): .ci/run must install it", name, debianPackage)
		}
		t.Skipf("%s not installed (Debian package %s)", name, debianPackage)
	}
	return p
}

// Root skips a test that needs root outside CI, and fails it in CI,
// where the tests run as root.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root, and CI runs as root")
	}
	t.Skip("needs root")
}
