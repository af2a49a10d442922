package cdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/fsutil"
	"os"
	"path/filepath"
)

// Writer builds a cdb file: records are streamed to the file as they are
// added, the hash tables and the header are written by Finish. The result
// is byte for byte what cdbmake writes for the same records in the same
// order.
type Writer struct {
	f     *os.File
	w     *bufio.Writer
	pos   int64 // where the next record goes
	slots []slot
	err   error // the first failure; every later call returns it
}

type slot struct {
	hash uint32
	pos  uint32
}

// NewWriter starts a cdb in f, which must be empty or truncated; the
// caller keeps ownership of f (Finish does not sync or close it).
func NewWriter(f *os.File) (*Writer, error) {
	if _, err := f.Seek(headerSize, 0); err != nil {
		return nil, fmt.Errorf("cdb: %w", err)
	}
	return &Writer{f: f, w: bufio.NewWriterSize(f, 64<<10), pos: headerSize}, nil
}

// Add appends a record. Several records may share a key; readers see
// them in the order they were added.
func (w *Writer) Add(key, value []byte) error {
	if w.err != nil {
		return w.err
	}
	end := w.pos + 8 + int64(len(key)) + int64(len(value))
	// The tables still to come need 16 bytes per record (two slots).
	if end+int64(len(w.slots)+1)*2*slotSize > maxFileSize {
		w.err = errors.New("cdb: database would exceed 4 GiB")
		return w.err
	}
	var rec [8]byte
	binary.LittleEndian.PutUint32(rec[:], uint32(len(key)))
	binary.LittleEndian.PutUint32(rec[4:], uint32(len(value)))
	w.write(rec[:])
	w.write(key)
	w.write(value)
	if w.err != nil {
		return w.err
	}
	w.slots = append(w.slots, slot{Hash(key), uint32(w.pos)})
	w.pos = end
	return nil
}

func (w *Writer) write(p []byte) {
	if w.err != nil {
		return
	}
	if _, err := w.w.Write(p); err != nil {
		w.err = fmt.Errorf("cdb: %w", err)
	}
}

// Finish writes the hash tables and the header. It does not sync.
func (w *Writer) Finish() error {
	if w.err != nil {
		return w.err
	}
	var count [256]int
	for _, s := range w.slots {
		count[s.hash&255]++
	}
	// Group the records by table, keeping the order they were added in.
	var start [256]int
	for i, n := 1, 0; i < 256; i++ {
		n += count[i-1]
		start[i] = n
	}
	grouped := make([]slot, len(w.slots))
	next := start
	for _, s := range w.slots {
		grouped[next[s.hash&255]] = s
		next[s.hash&255]++
	}
	var header [headerSize]byte
	var table []slot
	var buf [slotSize]byte
	for i := 0; i < 256; i++ {
		n := 2 * count[i]
		binary.LittleEndian.PutUint32(header[i*8:], uint32(w.pos))
		binary.LittleEndian.PutUint32(header[i*8+4:], uint32(n))
		table = append(table[:0], make([]slot, n)...)
		for _, s := range grouped[start[i] : start[i]+count[i]] {
			at := int(s.hash>>8) % n
			for table[at].pos != 0 {
				at = (at + 1) % n
			}
			table[at] = s
		}
		for _, s := range table {
			binary.LittleEndian.PutUint32(buf[:], s.hash)
			binary.LittleEndian.PutUint32(buf[4:], s.pos)
			w.write(buf[:])
		}
		w.pos += int64(n) * slotSize
	}
	if w.err == nil {
		if err := w.w.Flush(); err != nil {
			w.err = fmt.Errorf("cdb: %w", err)
		}
	}
	if w.err == nil {
		if _, err := w.f.WriteAt(header[:], 0); err != nil {
			w.err = fmt.Errorf("cdb: writing header: %w", err)
		}
	}
	if w.err != nil {
		return w.err
	}
	w.err = errors.New("cdb: writer already finished")
	return nil
}

// WriteFile atomically replaces the cdb at path, as qmail-newu and
// qmail-newmrh do: fill adds the records to path.tmp, which is then
// synced, closed and renamed over path, and the directory is synced so
// the rename survives a crash. On any failure path is left untouched.
// The file gets mode 0644 (qmail's umask 033 gives the same).
func WriteFile(path string, fill func(*Writer) error) error {
	return WriteFileVia(path, path+".tmp", fill)
}

// WriteFileVia is WriteFile with the temporary file named tmp, which
// must be in the same directory as path (qmail-newmrh builds
// morercpthosts.cdb through morercpthosts.tmp).
func WriteFileVia(path, tmp string, fill func(*Writer) error) (err error) {
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("unable to open %s: %w", tmp, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	w, err := NewWriter(f)
	if err != nil {
		return fmt.Errorf("unable to write %s: %w", tmp, err)
	}
	if err := fill(w); err != nil {
		return err
	}
	if err := w.Finish(); err != nil {
		return fmt.Errorf("unable to write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("unable to write %s: %w", tmp, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return fmt.Errorf("unable to write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("unable to move %s to %s: %w", tmp, path, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("unable to sync the directory of %s: %w", path, err)
	}
	return nil
}
