package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FsyncRenameRate measures the disk's limit for the way both servers
// make a message durable: create a file, write 4 KiB, fsync it, rename
// it into place and fsync the directory. writers goroutines do this in
// their own directories for d; the result is operations per second.
func FsyncRenameRate(ctx context.Context, dir string, writers int, d time.Duration) (float64, error) {
	payload := make([]byte, 4096)
	var ops atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := range writers {
		wdir := filepath.Join(dir, fmt.Sprintf("writer%d", w))
		if err := os.MkdirAll(wdir, 0o700); err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				if err := fsyncRenameOnce(wdir, i, payload); err != nil {
					errs <- err
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return Rate(int(ops.Load()), elapsed), nil
}

func fsyncRenameOnce(dir string, i int, payload []byte) error {
	tmp := filepath.Join(dir, fmt.Sprintf("tmp.%d", i))
	final := filepath.Join(dir, fmt.Sprintf("new.%d", i))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(payload); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer dirf.Close()
	return dirf.Sync()
}

// DescribeDisk finds the mount holding dir in /proc/self/mountinfo and
// what sysfs says about its device.
func DescribeDisk(dir string) Disk {
	disk := Disk{Dir: dir}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return disk
	}
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) != nil {
		return disk
	}
	want := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 6 || fields[2] != want {
			continue
		}
		postFields := strings.Fields(post)
		if len(postFields) >= 3 {
			disk.FSType, disk.Device = postFields[0], postFields[1]
			disk.MountOptions = fields[5] + "," + postFields[2]
		}
		break
	}
	sys := fmt.Sprintf("/sys/dev/block/%s", want)
	if r, err := os.ReadFile(filepath.Join(sys, "queue", "rotational")); err == nil {
		rot := strings.TrimSpace(string(r)) == "1"
		disk.Rotational = &rot
	}
	if m, err := os.ReadFile(filepath.Join(sys, "device", "model")); err == nil {
		disk.Model = strings.TrimSpace(string(m))
	}
	return disk
}

// unsafeMountOptions are the ones under which an fsync does not reach
// stable storage; a benchmark on such a mount measures nothing.
var unsafeMountOptions = []string{"nobarrier", "barrier=0", "data=writeback"}

// CheckFsyncEnvironment refuses a run whose numbers would not include
// the cost of fsync: libeatmydata preloaded, or a mount option that
// makes fsync lie.
func CheckFsyncEnvironment(disk Disk) error {
	if v := os.Getenv("LD_PRELOAD"); strings.Contains(v, "eatmydata") {
		return fmt.Errorf("LD_PRELOAD=%s disables fsync", v)
	}
	for _, opt := range strings.Split(disk.MountOptions, ",") {
		for _, bad := range unsafeMountOptions {
			if opt == bad {
				return fmt.Errorf("%s is mounted with %s: fsync does not reach the disk", disk.Dir, opt)
			}
		}
	}
	return nil
}
