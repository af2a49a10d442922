package pop3

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tmpMaxAge is maildir_clean's limit: files in tmp/ last accessed longer
// ago than this are leftovers of failed deliveries.
const tmpMaxAge = 36 * time.Hour

// message is one maildir file of the session.
type message struct {
	name    string // "new/X" or "cur/X"
	size    int64
	deleted bool
}

// Maildir is the transaction state of qmail-pop3d on one maildir.
type Maildir struct {
	dir  string
	msgs []message
	last int // highest message number deleted (LAST)
}

// Errors of OpenMaildir, with qmail-pop3d's replies.
var (
	ErrNoMaildir = errors.New("this user has no $HOME/Maildir")
	ErrScan      = errors.New("unable to scan $HOME/Maildir")
)

// OpenMaildir prepares a session on dir, as qmail-pop3d's getlist does:
// stale files in tmp/ are removed, then new/ and cur/ are listed (names
// starting with '.' and files modified at or after now skipped), oldest
// first.
func OpenMaildir(dir string, now time.Time) (*Maildir, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, ErrNoMaildir
	}
	cleanTmp(filepath.Join(dir, "tmp"), now)
	type entry struct {
		message
		mtime int64
	}
	var entries []entry
	for _, sub := range []string{"new", "cur"} {
		names, err := readNames(filepath.Join(dir, sub))
		if err != nil {
			return nil, ErrScan
		}
		for _, n := range names {
			if strings.HasPrefix(n, ".") {
				continue
			}
			st, err := os.Stat(filepath.Join(dir, sub, n))
			if err != nil || st.ModTime().Unix() >= now.Unix() {
				continue
			}
			entries = append(entries, entry{message{name: sub + "/" + n, size: st.Size()}, st.ModTime().Unix()})
		}
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].mtime < entries[j].mtime })
	m := &Maildir{dir: dir, msgs: make([]message, len(entries))}
	for i, e := range entries {
		m.msgs[i] = e.message
	}
	return m, nil
}

// readNames lists a directory without sorting or stat'ing its entries.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// cleanTmp removes files of tmp/ not accessed for 36 hours.
func cleanTmp(tmp string, now time.Time) {
	names, err := readNames(tmp)
	if err != nil {
		return
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".") {
			continue
		}
		p := filepath.Join(tmp, n)
		var st syscall.Stat_t
		if syscall.Stat(p, &st) != nil {
			continue
		}
		if now.Unix() > st.Atim.Sec+int64(tmpMaxAge/time.Second) {
			os.Remove(p)
		}
	}
}

// Pop3d is one qmail-pop3d session on conn.
type Pop3d struct {
	Maildir *Maildir
	Timeout time.Duration // per read and write; 0 = DefaultTimeout seconds
}

// Serve answers commands until QUIT or the end of the connection, having
// sent the first "+OK ". qmail-pop3d always exits 0.
func (p *Pop3d) Serve(conn io.ReadWriter) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout * time.Second
	}
	tc := newTimedConn(conn, timeout)
	in := bufio.NewReader(tc)
	out := bufio.NewWriterSize(tc, 4096)
	s := &pop3dSession{m: p.Maildir, out: out}
	s.ok()
	for out.Flush() == nil {
		cmd, err := ReadCommand(in)
		if err != nil {
			return
		}
		if s.command(cmd) {
			out.Flush()
			return
		}
	}
}

type pop3dSession struct {
	m   *Maildir
	out *bufio.Writer
}

func (s *pop3dSession) ok()            { s.out.WriteString("+OK \r\n") }
func (s *pop3dSession) err(msg string) { s.out.WriteString("-ERR " + msg + "\r\n") }

// command runs one command; it reports whether the session is over.
func (s *pop3dSession) command(c Command) bool {
	switch {
	case c.is("quit"):
		s.quit()
		return true
	case c.is("stat"):
		s.stat()
	case c.is("list"):
		s.listing(c.Arg, false)
	case c.is("uidl"):
		s.listing(c.Arg, true)
	case c.is("dele"):
		s.dele(c.Arg)
	case c.is("retr"), c.is("top"):
		// qmail's RETR is TOP: "RETR n k" works as "TOP n k".
		return s.top(c.Arg)
	case c.is("rset"):
		for i := range s.m.msgs {
			s.m.msgs[i].deleted = false
		}
		s.m.last = 0
		s.ok()
	case c.is("last"):
		s.out.WriteString("+OK " + strconv.Itoa(s.m.last) + "\r\n")
	case c.is("noop"):
		s.ok()
	default:
		s.err("unimplemented")
	}
	return false
}

// stat counts every message, deleted or not (qmail's quirk), and sums the
// sizes of the undeleted ones.
func (s *pop3dSession) stat() {
	var total int64
	for _, m := range s.m.msgs {
		if !m.deleted {
			total += m.size
		}
	}
	s.out.WriteString("+OK " + strconv.Itoa(len(s.m.msgs)) + " " + strconv.FormatInt(total, 10) + "\r\n")
}

// msgno parses a message number, replying with qmail's error when it is
// not a usable one; it returns the index, or -1.
func (s *pop3dSession) msgno(arg string) int {
	u, digits := scanUlong(arg)
	switch {
	case digits == 0:
		s.err("syntax error")
	case u == 0:
		s.err("messages are counted from 1")
	case u > uint64(len(s.m.msgs)):
		s.err("not that many messages")
	case s.m.msgs[u-1].deleted:
		s.err("already deleted")
	default:
		return int(u - 1)
	}
	return -1
}

func (s *pop3dSession) dele(arg string) {
	i := s.msgno(arg)
	if i < 0 {
		return
	}
	s.m.msgs[i].deleted = true
	s.m.last = max(s.m.last, i+1)
	s.ok()
}

func (s *pop3dSession) listLine(i int, uidl bool) {
	s.out.WriteString(strconv.Itoa(i + 1))
	s.out.WriteString(" ")
	if uidl {
		s.out.WriteString(UID(s.m.msgs[i].name))
	} else {
		s.out.WriteString(strconv.FormatInt(s.m.msgs[i].size, 10))
	}
	s.out.WriteString("\r\n")
}

func (s *pop3dSession) listing(arg string, uidl bool) {
	if arg != "" {
		i := s.msgno(arg)
		if i < 0 {
			return
		}
		s.out.WriteString("+OK ")
		s.listLine(i, uidl)
		return
	}
	s.ok()
	for i, m := range s.m.msgs {
		if !m.deleted {
			s.listLine(i, uidl)
		}
	}
	s.out.WriteString(".\r\n")
}

// UID is a message's unique id: its file name without new/ or cur/ and
// without the ":2,flags" info.
func UID(name string) string {
	name = name[strings.IndexByte(name, '/')+1:]
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	return name
}

// top sends a message (RETR n), or its header and k body lines (TOP n k).
// It reports whether the session must end (the message file failed while
// being read, where qmail dies).
func (s *pop3dSession) top(arg string) bool {
	i := s.msgno(arg)
	if i < 0 {
		return false
	}
	_, digits := scanUlong(arg)
	rest := strings.TrimLeft(arg[digits:], " ")
	var limit uint64 // 0: the whole message
	if k, n := scanUlong(rest); n > 0 {
		limit = k + 1
		if limit == 0 {
			limit = k
		}
	}
	f, err := os.Open(filepath.Join(s.m.dir, s.m.msgs[i].name))
	if err != nil {
		s.err("unable to open that message")
		return false
	}
	defer f.Close()
	s.ok()
	return Blast(s.out, bufio.NewReader(f), limit) != nil
}

// Blast writes a message for RETR/TOP: LF becomes CRLF, a line starting
// with '.' gets another '.', and after the header, limit-1 body lines at
// most are sent (limit 0: all). It ends with qmail's extra empty line and
// the terminating dot. Lines are streamed, never held whole.
func Blast(w *bufio.Writer, r *bufio.Reader, limit uint64) error {
	inHeader := true
	for {
		chunk, err := r.ReadSlice('\n')
		if len(chunk) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return err
		}
		if limit > 0 && !inHeader {
			if limit--; limit == 0 {
				break
			}
		}
		content := strings.TrimSuffix(string(chunk), "\n")
		if err == nil && content == "" {
			inHeader = false
		} else if strings.HasPrefix(content, ".") {
			w.WriteByte('.')
		}
		w.WriteString(content)
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = r.ReadSlice('\n')
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
				return err
			}
			w.Write([]byte(strings.TrimSuffix(string(chunk), "\n")))
		}
		w.WriteString("\r\n")
		if err != nil { // io.EOF: a last line without LF
			break
		}
	}
	w.WriteString("\r\n.\r\n")
	return w.Flush()
}

// quit deletes the marked messages and moves the rest of new/ to cur/.
func (s *pop3dSession) quit() {
	for _, m := range s.m.msgs {
		path := filepath.Join(s.m.dir, m.name)
		if m.deleted {
			if err := os.Remove(path); err != nil {
				s.err("unable to unlink all deleted messages")
			}
			continue
		}
		if strings.HasPrefix(m.name, "new/") {
			// As in qmail, a failed rename is not reported.
			os.Rename(path, filepath.Join(s.m.dir, "cur", m.name[4:]+":2,"))
		}
	}
	s.ok()
}

// ServeMaildir is qmail-pop3d after its checks: it opens the maildir dir
// (relative to the user's home, the working directory) and serves conn,
// or sends qmail's error when the maildir cannot be used.
func ServeMaildir(conn io.ReadWriter, dir string, timeout time.Duration) {
	m, err := OpenMaildir(dir, time.Now())
	if err != nil {
		io.WriteString(conn, "-ERR "+err.Error()+"\r\n")
		return
	}
	(&Pop3d{Maildir: m, Timeout: timeout}).Serve(conn)
}
