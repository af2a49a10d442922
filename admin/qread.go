package admin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/goqmail/goqmail/queue"
)

// maxQueueRecord bounds one record of an info, local or remote file when
// listing the queue. qmail-send writes recipients after rewriting, so they
// may exceed queue.MaxAddr; a record this long can only be corruption.
const maxQueueRecord = 1 << 16

// QueueEntry is one preprocessed message, as qmail-qread lists it.
type QueueEntry struct {
	ID       uint64    `json:"id"`   // the inode number naming the files
	Time     time.Time `json:"time"` // birth: the mtime of info/N
	Size     int64     `json:"size"` // of mess/N, Received line included
	Sender   string    `json:"sender"`
	Bouncing bool      `json:"bouncing"` // bounce/N exists
	// Recipients lists local/N then remote/N, in file order.
	Recipients []QueueRecipient `json:"recipients"`
	// Trouble says why the message could not be read completely; the
	// fields above hold what could be read.
	Trouble string `json:"trouble,omitempty"`
	// listed: the summary line was printed by qmail-qread before the
	// trouble (a channel file failed), not instead of it.
	listed bool
}

// QueueRecipient is one record of a local or remote file.
type QueueRecipient struct {
	Channel string `json:"channel"` // "local" or "remote"
	Address string `json:"address"`
	Done    bool   `json:"done"` // delivered or bounced (a D record)
}

// ReadQueue lists the preprocessed messages of the queue at queueDir, the
// way qmail-qread finds them: every numeric entry of info/0..22. Messages
// still in todo/ are not listed (qmail-qstat counts them). A message that
// cannot be read is returned with Trouble set; only an unreadable info
// subdirectory is an error.
func ReadQueue(queueDir string) ([]QueueEntry, error) {
	var entries []QueueEntry
	for sub := 0; sub < queue.Split; sub++ {
		dir := filepath.Join(queueDir, "info", strconv.Itoa(sub))
		des, err := os.ReadDir(dir)
		if err != nil {
			// qmail-qread's words: the name relative to the queue.
			return entries, fmt.Errorf("unable to opendir info/%d: %w", sub, withoutPath(err))
		}
		var ids []uint64
		for _, de := range des {
			id, err := strconv.ParseUint(de.Name(), 10, 64)
			if err != nil || strconv.FormatUint(id, 10) != de.Name() {
				continue // readsubdir skips names that are not plain numbers
			}
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			entries = append(entries, readEntry(queueDir, id))
		}
	}
	return entries, nil
}

func readEntry(queueDir string, id uint64) QueueEntry {
	e := QueueEntry{ID: id}
	st, err := os.Stat(queue.SplitPath(queueDir, "mess", id))
	if err != nil {
		e.Trouble = errorText(err)
		return e
	}
	e.Size = st.Size()
	if _, err := os.Stat(queue.FlatPath(queueDir, "bounce", id)); err == nil {
		e.Bouncing = true
	}
	info, err := os.Open(queue.SplitPath(queueDir, "info", id))
	if err != nil {
		e.Trouble = errorText(err)
		return e
	}
	defer info.Close()
	// qmail-qread shows whatever follows the first byte up to the first
	// NUL, without checking that the record is an F record.
	rec, err := queue.NewRecordReader(io.LimitReader(info, maxQueueRecord+2), maxQueueRecord).Next()
	if err == nil {
		e.Sender = rec.Text
	}
	st, err = info.Stat()
	if err != nil {
		e.Trouble = errorText(err)
		return e
	}
	e.Time = st.ModTime().UTC()
	e.listed = true
	for _, channel := range []string{"local", "remote"} {
		if err := readChannel(&e, queueDir, channel); err != nil {
			e.Trouble = errorText(err)
		}
	}
	return e
}

// readChannel appends the recipients of local/N or remote/N. A missing
// file is no trouble: the channel has nothing (left) to do.
func readChannel(e *QueueEntry, queueDir, channel string) error {
	f, err := os.Open(queue.SplitPath(queueDir, channel, e.ID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	rr := queue.NewRecordReader(f, maxQueueRecord)
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil // a record without its NUL is ignored, as getln's !match
		}
		if err != nil {
			return err
		}
		if rec.Type == 'T' || rec.Type == 'D' {
			e.Recipients = append(e.Recipients, QueueRecipient{Channel: channel, Address: rec.Text, Done: rec.Type == 'D'})
		}
	}
}

// withoutPath strips the operation and path of a *fs.PathError.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// errorText is the reason of a failed file operation without the path,
// which qmail-qread's warnings do not show.
func errorText(err error) string {
	return withoutPath(err).Error()
}

// WriteQread prints entries in qmail-qread's format:
//
//	14 Jan 2024 10:00:00 GMT  #1234  567  <sender@host>  bouncing
//		remote	rcpt@elsewhere
//	  done	local	user@here
//
// Unprintable bytes become "_". A message that could not be read gives
// "warning: trouble with #N: reason", after its lines when only a channel
// file failed.
func WriteQread(w io.Writer, entries []QueueEntry) error {
	var b []byte
	for _, e := range entries {
		if e.listed {
			line := e.Time.UTC().Format("2 Jan 2006 15:04:05") + " GMT  #" +
				strconv.FormatUint(e.ID, 10) + "  " + strconv.FormatInt(e.Size, 10) +
				"  <" + e.Sender + "> "
			if e.Bouncing {
				line += " bouncing"
			}
			b = appendPrintable(b, line, '_')
			b = append(b, '\n')
			for _, r := range e.Recipients {
				if r.Done {
					b = append(b, "  done"...)
				}
				b = append(b, '\t')
				b = append(b, r.Channel...)
				b = append(b, '\t')
				b = appendPrintable(b, r.Address, '_')
				b = append(b, '\n')
			}
		}
		if e.Trouble != "" {
			b = append(b, "warning: trouble with #"...)
			b = strconv.AppendUint(b, e.ID, 10)
			b = append(b, ": "...)
			b = append(b, e.Trouble...)
			b = append(b, '\n')
		}
		if len(b) > 1<<16 {
			if _, err := w.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	_, err := w.Write(b)
	return err
}

// appendPrintable appends s with every byte outside printable ASCII
// replaced by sub, so queue contents cannot drive the terminal.
func appendPrintable(b []byte, s string, sub byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 32 || c > 126 {
			c = sub
		}
		b = append(b, c)
	}
	return b
}

// QueueStat is what qmail-qstat counts.
type QueueStat struct {
	Messages       int `json:"messages"`       // files in mess/*
	Unpreprocessed int `json:"unpreprocessed"` // files in todo/
}

// StatQueue counts the messages of the queue at queueDir as qmail-qstat
// does: every entry below mess/ (one per message), and the entries of
// todo/ (messages qmail-send has not preprocessed yet).
func StatQueue(queueDir string) (QueueStat, error) {
	var s QueueStat
	messDirs, err := os.ReadDir(filepath.Join(queueDir, "mess"))
	if err != nil {
		return s, err
	}
	for _, d := range messDirs {
		if !d.IsDir() {
			s.Messages++
			continue
		}
		files, err := os.ReadDir(filepath.Join(queueDir, "mess", d.Name()))
		if err != nil {
			return s, err
		}
		s.Messages += len(files)
	}
	todo, err := os.ReadDir(filepath.Join(queueDir, "todo"))
	if err != nil {
		return s, err
	}
	s.Unpreprocessed = len(todo)
	return s, nil
}

// WriteQstat prints qmail-qstat's two lines.
func WriteQstat(w io.Writer, s QueueStat) error {
	_, err := fmt.Fprintf(w, "messages in queue: %d\nmessages in queue but not yet preprocessed: %d\n", s.Messages, s.Unpreprocessed)
	return err
}
