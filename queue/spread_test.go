package queue

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goqmail/goqmail/internal/fsutil"
)

// TestCreateSpreadsSubdirs: on a file system with inode flags (ext4 here
// and in CI), the queue and its split directories are marked as tops of
// directory hierarchies, and the other directories are not.
func TestCreateSpreadsSubdirs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queue")
	if err := Create(dir, nil); err != nil {
		t.Fatal(err)
	}
	flags := func(path string) (uint32, error) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	}
	if _, err := flags(dir); err != nil {
		t.Skipf("no inode flags on this file system: %v", err)
	}
	for _, d := range Layout {
		got, err := flags(filepath.Join(dir, d.Name))
		if err != nil {
			t.Fatal(err)
		}
		want := d.Name == "" || d.Split
		if (got&fsutil.TopdirFlag != 0) != want {
			t.Errorf("%q: flags %#x, top of hierarchy %v, want %v", d.Name, got, !want, want)
		}
	}
}
