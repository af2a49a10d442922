package remote

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The lock/tcpto table (tcpto.c): up to 64 records of 16 bytes. Bytes
// 0-3 are an IPv4 address, byte 4 the number of recent connect
// timeouts (at most 10), bytes 8-11 the time of the last one,
// little-endian. The other bytes are zero. IPv6 addresses do not fit the
// format and are never recorded: other qmail tools read this file.
const (
	tcptoSize      = 1024
	tcptoRecord    = 16
	tcptoMaxCount  = 10
	tcptoMinRepeat = 120 // seconds between two counted timeouts
)

// TCPTOPath is the table's place under the qmail home.
func TCPTOPath(home string) string { return filepath.Join(home, "queue", "lock", "tcpto") }

// TCPTO is qmail-remote's view of lock/tcpto for one delivery.
type TCPTO struct {
	path string
	pid  int
	now  func() time.Time
	// wasThere remembers that the last Skip found the address, so that
	// a successful connect has a record to reset (as tcpto.c does).
	wasThere bool
}

// NewTCPTO opens the table at path; pid varies the back-off per process
// as qmail's getpid() did.
func NewTCPTO(path string, pid int, now func() time.Time) *TCPTO {
	return &TCPTO{path: path, pid: pid, now: now}
}

// readTable reads the table under an exclusive lock held on a write
// descriptor, which the caller must close. Failures mean "no table":
// qmail-remote delivers regardless.
func (t *TCPTO) readTable() (lock *os.File, buf []byte, ok bool) {
	lock, err := os.OpenFile(t.path, os.O_WRONLY, 0)
	if err != nil {
		return nil, nil, false
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, nil, false
	}
	read, err := os.Open(t.path)
	if err != nil {
		lock.Close()
		return nil, nil, false
	}
	buf = make([]byte, tcptoSize)
	n, err := io.ReadFull(read, buf)
	read.Close()
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		lock.Close()
		return nil, nil, false
	}
	buf = buf[:n-n%tcptoRecord]
	if len(buf) == 0 {
		lock.Close()
		return nil, nil, false
	}
	return lock, buf, true
}

func ip4Key(addr netip.Addr) ([4]byte, bool) {
	addr = addr.Unmap()
	if !addr.Is4() {
		return [4]byte{}, false
	}
	return addr.As4(), true
}

// Skip reports whether addr timed out at least twice recently enough
// that it should not be tried now: within (60 + pid%32) * 64 seconds of
// the last timeout.
func (t *TCPTO) Skip(addr netip.Addr) bool {
	t.wasThere = false
	key, ok := ip4Key(addr)
	if !ok {
		return false
	}
	lock, buf, ok := t.readTable()
	if !ok {
		return false
	}
	lock.Close()
	for off := 0; off < len(buf); off += tcptoRecord {
		rec := buf[off : off+tcptoRecord]
		if [4]byte(rec[:4]) != key {
			continue
		}
		t.wasThere = true
		if rec[4] >= 2 {
			// A timeout "in the future" (the clock was ahead when it
			// was written) is not recent: tcpto.c's unsigned
			// subtraction made it huge.
			ago := t.now().Unix() - int64(binary.LittleEndian.Uint32(rec[8:12]))
			if ago >= 0 && ago < int64((60+(t.pid&31))<<6) {
				return true
			}
		}
		return false
	}
	return false
}

// Record notes the outcome of a connect to addr: timedOut counts a
// timeout (at most one per 120 s); a connect that did not time out
// clears the count. A full table loses the record whose last timeout,
// plus 1024 s per counted timeout, is oldest.
func (t *TCPTO) Record(addr netip.Addr, timedOut bool) error {
	if !timedOut && !t.wasThere {
		return nil
	}
	key, ok := ip4Key(addr)
	if !ok {
		return nil
	}
	lock, buf, ok := t.readTable()
	if !ok {
		return nil
	}
	defer lock.Close()
	now := t.now().Unix()
	for off := 0; off < len(buf); off += tcptoRecord {
		rec := buf[off : off+tcptoRecord]
		if [4]byte(rec[:4]) != key {
			continue
		}
		if !timedOut {
			rec[4] = 0
		} else {
			last := int64(binary.LittleEndian.Uint32(rec[8:12]))
			if rec[4] != 0 && now < last+tcptoMinRepeat {
				return nil
			}
			rec[4] = min(rec[4]+1, tcptoMaxCount)
			binary.LittleEndian.PutUint32(rec[8:12], uint32(now))
		}
		return writeRecord(lock, off, rec)
	}
	if !timedOut {
		return nil
	}
	slot := -1
	for off := 0; off < len(buf); off += tcptoRecord {
		if buf[off+4] == 0 {
			slot = off
			break
		}
	}
	if slot < 0 {
		var oldest int64
		for off := 0; off < len(buf); off += tcptoRecord {
			rec := buf[off : off+tcptoRecord]
			when := int64(binary.LittleEndian.Uint32(rec[8:12])) + int64(rec[4])<<10
			if slot < 0 || when < oldest {
				slot, oldest = off, when
			}
		}
	}
	rec := buf[slot : slot+tcptoRecord]
	copy(rec[:4], key[:])
	binary.LittleEndian.PutUint32(rec[8:12], uint32(now))
	rec[4] = 1
	return writeRecord(lock, slot, rec)
}

func writeRecord(f *os.File, off int, rec []byte) error {
	if _, err := f.WriteAt(rec, int64(off)); err != nil {
		return fmt.Errorf("updating %s: %w", f.Name(), err)
	}
	return nil
}

// TimeoutEntry is one line of qmail-tcpto's listing.
type TimeoutEntry struct {
	Addr  netip.Addr
	Count int
	// Ago is how long ago the last timeout was, in seconds (qmail
	// prints it as a 64-bit unsigned number, huge when negative).
	Ago int64
}

// ReadTCPTO lists the records with a nonzero count, as qmail-tcpto
// shows them. The read happens under the table's lock.
func ReadTCPTO(path string, now time.Time) ([]TimeoutEntry, error) {
	lock, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("unable to open tcpto: %w", err)
	}
	defer lock.Close()
	read, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("unable to open tcpto: %w", err)
	}
	defer read.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("unable to lock tcpto: %w", err)
	}
	buf := make([]byte, tcptoSize)
	n, err := io.ReadFull(read, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("unable to read tcpto: %w", err)
	}
	buf = buf[:n-n%tcptoRecord]
	var entries []TimeoutEntry
	for off := 0; off < len(buf); off += tcptoRecord {
		rec := buf[off : off+tcptoRecord]
		if rec[4] == 0 {
			continue
		}
		when := int64(binary.LittleEndian.Uint32(rec[8:12]))
		entries = append(entries, TimeoutEntry{
			Addr:  netip.AddrFrom4([4]byte(rec[:4])),
			Count: int(rec[4]),
			Ago:   now.Unix() - when,
		})
	}
	return entries, nil
}

// ClearTCPTO is qmail-tcpok: the table becomes 1024 zero bytes, written
// under its lock.
func ClearTCPTO(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("unable to write %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("unable to lock %s: %w", path, err)
	}
	if _, err := f.WriteAt(make([]byte, tcptoSize), 0); err != nil {
		return fmt.Errorf("unable to clear %s: %w", path, err)
	}
	return nil
}
