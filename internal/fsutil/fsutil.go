// Package fsutil has the file-system steps that make a write durable.
package fsutil

import "os"

// SyncDir fsyncs a directory, so that the names just created, linked or
// renamed in it survive a crash: on Linux a file's own fsync does not
// cover its directory entry.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
