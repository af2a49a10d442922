// Package cdb reads and writes D. J. Bernstein's constant database format
// (https://cr.yp.to/cdb/cdb.txt), the format of qmail's users/cdb and
// control/morercpthosts.cdb, byte for byte compatible with cdbmake.
//
// A cdb file is a 2048-byte header of 256 (position, slot count) pairs,
// then the records (key length, data length, key, data), then 256 hash
// tables of (hash, record position) slots. Every number is a 32-bit
// little-endian integer. A key's hash h selects table h&255 and the first
// slot (h>>8) mod slots; probing is linear and stops at an empty slot.
//
// The Reader treats the file as hostile: every position and length read
// from it is checked against the file size before use, so a corrupt or
// malicious file gives an error, never a panic or an allocation larger
// than the file.
package cdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/fsutil"
	"io"
)

const (
	headerSize = 2048
	slotSize   = 8
	// maxFileSize is the largest file the format can address: every
	// position is a 32-bit number.
	maxFileSize = 1<<32 - 1
)

// ErrFormat is wrapped by every error that reports a malformed file.
var ErrFormat = errors.New("cdb: malformed file")

// Hash is the cdb hash function: h = 5381; h = ((h << 5) + h) ^ c.
func Hash(key []byte) uint32 {
	h := uint32(5381)
	for _, c := range key {
		h = ((h << 5) + h) ^ uint32(c)
	}
	return h
}

// Reader looks up keys in a cdb file.
type Reader struct {
	r      io.ReaderAt
	size   int64
	closer io.Closer
	header [headerSize]byte
}

// Open opens the cdb file at path. The caller must Close it.
func Open(path string) (*Reader, error) {
	f, err := fsutil.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cdb: %s: %w", path, err)
	}
	r, err := New(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cdb: %s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// New reads a cdb of the given size from r. The header is read at once;
// records are read on demand.
func New(r io.ReaderAt, size int64) (*Reader, error) {
	if size < headerSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrFormat, size)
	}
	if size > maxFileSize {
		size = maxFileSize // nothing beyond 4 GiB can be addressed
	}
	c := &Reader{r: r, size: size}
	if _, err := r.ReadAt(c.header[:], 0); err != nil {
		return nil, fmt.Errorf("cdb: reading header: %w", err)
	}
	return c, nil
}

// Close releases the file opened by Open; for a Reader made by New it
// does nothing.
func (c *Reader) Close() error {
	if c.closer == nil {
		return nil
	}
	err := c.closer.Close()
	c.closer = nil
	return err
}

// Get returns the data of the first record with the given key.
func (c *Reader) Get(key []byte) (value []byte, ok bool, err error) {
	err = c.FindAll(key, func(v []byte) bool {
		value, ok = v, true
		return false
	})
	return value, ok, err
}

// FindAll calls fn with the data of every record with the given key, in
// the order the records were added, until fn returns false.
func (c *Reader) FindAll(key []byte, fn func(value []byte) bool) error {
	h := Hash(key)
	entry := c.header[(h&255)*8:]
	tablePos := int64(binary.LittleEndian.Uint32(entry))
	slots := int64(binary.LittleEndian.Uint32(entry[4:]))
	if slots == 0 {
		return nil
	}
	if tablePos < headerSize || tablePos+slots*slotSize > c.size {
		return fmt.Errorf("%w: hash table %d at %d with %d slots exceeds the file", ErrFormat, h&255, tablePos, slots)
	}
	start := int64(h>>8) % slots
	var slot [slotSize]byte
	var rec [8]byte
	for n := int64(0); n < slots; n++ {
		at := tablePos + ((start+n)%slots)*slotSize
		if err := c.readAt(slot[:], at); err != nil {
			return err
		}
		slotHash := binary.LittleEndian.Uint32(slot[:])
		recPos := int64(binary.LittleEndian.Uint32(slot[4:]))
		if recPos == 0 {
			return nil // an empty slot ends the probe
		}
		if slotHash != h {
			continue
		}
		if recPos < headerSize || recPos+8 > c.size {
			return fmt.Errorf("%w: record position %d out of range", ErrFormat, recPos)
		}
		if err := c.readAt(rec[:], recPos); err != nil {
			return err
		}
		klen := int64(binary.LittleEndian.Uint32(rec[:]))
		dlen := int64(binary.LittleEndian.Uint32(rec[4:]))
		if recPos+8+klen+dlen > c.size {
			return fmt.Errorf("%w: record at %d exceeds the file", ErrFormat, recPos)
		}
		if klen != int64(len(key)) {
			continue
		}
		buf := make([]byte, klen+dlen)
		if err := c.readAt(buf, recPos+8); err != nil {
			return err
		}
		if string(buf[:klen]) != string(key) {
			continue
		}
		if !fn(buf[klen:]) {
			return nil
		}
	}
	return nil
}

// ForEach calls fn with every record of the file in order, as cdbdump
// lists them, until fn returns false.
func (c *Reader) ForEach(fn func(key, value []byte) bool) error {
	// The records end where the first hash table starts; cdbmake writes
	// table 0 first.
	end := int64(binary.LittleEndian.Uint32(c.header[:]))
	if end < headerSize || end > c.size {
		return fmt.Errorf("%w: first hash table at %d", ErrFormat, end)
	}
	var rec [8]byte
	for pos := int64(headerSize); pos < end; {
		if pos+8 > end {
			return fmt.Errorf("%w: truncated record at %d", ErrFormat, pos)
		}
		if err := c.readAt(rec[:], pos); err != nil {
			return err
		}
		klen := int64(binary.LittleEndian.Uint32(rec[:]))
		dlen := int64(binary.LittleEndian.Uint32(rec[4:]))
		if pos+8+klen+dlen > end {
			return fmt.Errorf("%w: record at %d exceeds the data area", ErrFormat, pos)
		}
		buf := make([]byte, klen+dlen)
		if err := c.readAt(buf, pos+8); err != nil {
			return err
		}
		if !fn(buf[:klen], buf[klen:]) {
			return nil
		}
		pos += 8 + klen + dlen
	}
	return nil
}

func (c *Reader) readAt(p []byte, off int64) error {
	n, err := c.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: short read at %d", ErrFormat, off)
	}
	return fmt.Errorf("cdb: read at %d: %w", off, err)
}
