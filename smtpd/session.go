// Package smtpd is qmail-smtpd: netqmail 1.06's SMTP server with the
// Debian patch set built in (errmsg logging, 500 for unknown verbs,
// relay-character screening, SMTP AUTH, RCPTCHECK). Its replies, its
// Received line and its DATA transparency rules are qmail's, byte for
// byte; unlike qmail, every input is bounded in memory.
package smtpd

import (
	"bufio"
	"errors"
	"github.com/goqmail/goqmail/internal/ascii"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goqmail/goqmail/queue"
	"github.com/goqmail/goqmail/tcpserver"
)

// MaxLine is the longest command line (and AUTH response line) accepted,
// without its CRLF. qmail has no limit (CVE-2005-1514); a longer line is
// read to its end, discarded, and answered with ReplyLineTooLong.
const MaxLine = 2048

// MaxRecipients bounds the recipients of one transaction, so that the
// envelope cannot grow without bound. RFC 5321 asks for at least 100.
const MaxRecipients = 10000

// Replies that are ours rather than qmail's (qmail has no such limits).
const (
	ReplyLineTooLong      = "500 line too long (#5.5.2)"
	ReplyTooManyRcpts     = "452 too many recipients (#4.5.3)"
	ReplyTooManyAuthFails = "421 too many authentication failures (#4.7.0)"
)

// ReplyStrayNewline answers a bare LF in DATA, then the session ends.
const ReplyStrayNewline = "451 See https://cr.yp.to/docs/smtplf.html."

// Queue is one message on its way into qmail-queue; *queue.Client is the
// real one.
type Queue interface {
	io.Writer
	Pid() int
	Fail(err error)
	Close(sender string, recipients []string) error
}

// Session is one SMTP conversation on conn.
type Session struct {
	cfg  *Config
	conn io.ReadWriter
	// rawConn is the connection the session started on, under any TLS.
	rawConn io.ReadWriter
	in      *bufio.Reader
	out     *bufio.Writer
	log     *Logger
	logw    io.Writer

	// OpenQueue starts qmail-queue for one message.
	OpenQueue func() (Queue, error)
	// Now is the clock of the Received line and of "250 ok TIME".
	Now func() time.Time
	// Pid is the process (or, in the listener, session) number used in
	// the CRAM-MD5 challenge and the log.
	Pid int
	// AuthFailDelay is the pause after a failed AUTH (qmail: 5 seconds).
	AuthFailDelay time.Duration
	// MaxAuthFailures ends the session after this many failed AUTHs.
	MaxAuthFailures int
	// SetEnv exports a variable to the programs the session runs later
	// (qmail-queue, RCPTCHECK), as qmail's env_put does; nil in the
	// standalone listener, where the session keeps its own copy.
	SetEnv func(key, value string)
	// ChildEnv is the environment of the programs the session runs
	// (qmail-queue, checkpassword, RCPTCHECK); nil means the process
	// environment.
	ChildEnv []string

	helo        string // HELO argument, shown when it differs from the remote host
	heloDiffers bool
	seenMail    bool
	seenAuth    bool
	flagBarf    bool
	mailFrom    string
	rcpts       []string
	protocol    string
	remoteInfo  string
	hasInfo     bool
	relayClient string
	isRelay     bool
	authFails   int
	// STARTTLS client-certificate relaying (tlsVerify).
	tlsVerified  bool
	tlsVerifyErr string
	env          map[string]string // variables set during the session
	// authPipe makes the checkpassword fd 3 pipe; nil means os.Pipe.
	// Tests replace it to make the pipe fail.
	authPipe func() (r, w *os.File, err error)
}

// exitSession ends the command loop with a process exit code.
type exitSession struct{ code int }

func (e exitSession) Error() string { return "session ends with exit code " + strconv.Itoa(e.code) }

// NewSession prepares a session on conn with cfg; logs go to logw.
func NewSession(cfg *Config, conn io.ReadWriter, logw io.Writer) *Session {
	s := &Session{
		cfg:             cfg,
		conn:            conn,
		Now:             time.Now,
		Pid:             os.Getpid(),
		AuthFailDelay:   5 * time.Second,
		MaxAuthFailures: 3,
		protocol:        "SMTP",
		remoteInfo:      cfg.Env.RemoteInfo,
		hasInfo:         cfg.Env.HasRemoteInfo,
		relayClient:     cfg.Env.RelayClient,
		isRelay:         cfg.Env.IsRelayClient,
		env:             map[string]string{},
	}
	// qmail-queue sees what the session exported (RELAYCLIENT and
	// TCPREMOTEINFO after AUTH), and its QMAILQUEUE decides the program.
	s.OpenQueue = func() (Queue, error) { return queue.OpenEnv(cfg.Home, s.childEnv()) }
	s.logw = logw
	s.rawConn = conn
	s.setStreams(conn)
	return s
}

// setStreams (re)builds the buffered reader and writer over c. A new
// reader drops whatever the old one had buffered: after STARTTLS that is
// the defence against command injection.
func (s *Session) setStreams(c io.ReadWriter) {
	s.conn = c
	s.in = bufio.NewReaderSize(&flushingReader{s: s}, 4096)
	s.out = bufio.NewWriterSize(&deadlineWriter{s: s}, 1024)
}

type deadliner interface {
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// flushingReader flushes pending replies before every read from the
// client, as qmail's saferead does, so pipelined replies go out in one
// batch and nothing waits forever; each read gets the timeoutsmtpd
// deadline when the connection supports deadlines.
type flushingReader struct{ s *Session }

func (r *flushingReader) Read(p []byte) (int, error) {
	if err := r.s.flush(); err != nil {
		return 0, err
	}
	if d, ok := r.s.conn.(deadliner); ok {
		d.SetReadDeadline(time.Now().Add(r.s.cfg.Timeout))
	}
	return r.s.conn.Read(p)
}

type deadlineWriter struct{ s *Session }

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if d, ok := w.s.conn.(deadliner); ok {
		d.SetWriteDeadline(time.Now().Add(w.s.cfg.Timeout))
	}
	return w.s.conn.Write(p)
}

// hold keeps a stopping listener from closing the connection until the
// returned release is called (see tcpserver.Holder); a connection
// without Hold (a process's own stdin/stdout) needs nothing.
func (s *Session) hold() (release func()) {
	if h, ok := s.rawConn.(tcpserver.Holder); ok {
		return h.Hold()
	}
	return func() {}
}

// errWrite marks a failed write to the client.
var errWrite = errors.New("write to client failed")

func (s *Session) flush() error {
	if err := s.out.Flush(); err != nil {
		return errors.Join(errWrite, err)
	}
	return nil
}

// reply queues one reply line; CRLF is added.
func (s *Session) reply(line string) {
	s.out.WriteString(line)
	s.out.WriteString("\r\n")
}

// setEnv records a variable for child programs and exports it when the
// session owns its process.
func (s *Session) setEnv(key, value string) {
	s.env[key] = value
	if s.SetEnv != nil {
		s.SetEnv(key, value)
	}
}

// Run talks SMTP until the client quits or goes away and returns the
// exit code qmail-smtpd would have: 0 after QUIT, 1 otherwise.
func (s *Session) Run() int {
	s.log = NewLogger(s.logw, s.Pid, s.cfg.Env.RemoteIP)
	s.log.Event("New session")
	err := s.run()
	var ex exitSession
	switch {
	case errors.As(err, &ex):
		if ferr := s.flush(); ferr != nil && ex.code == 0 {
			s.log.Event("Write error (disconnect?): quitting")
			return 1
		}
		return ex.code
	case errors.Is(err, errWrite):
		s.log.Event("Write error (disconnect?): quitting")
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Event("Connection timed out: quitting")
		s.reply("451 timeout (#4.4.2)")
		s.flush()
	default:
		s.log.Event("Read error (disconnect?): quitting")
	}
	return 1
}

func (s *Session) run() error {
	if s.cfg.Env.SMTPS {
		if err := s.startTLS(true); err != nil {
			return err
		}
	}
	s.dohelo(s.cfg.Env.RemoteHost)
	s.reply("220 " + s.cfg.Greeting + " ESMTP")
	for {
		line, err := s.readLine()
		if errors.Is(err, errLineTooLong) {
			s.log.Event("Command line too long")
			s.reply(ReplyLineTooLong)
			continue
		}
		if err != nil {
			return err
		}
		verb, arg := splitCommand(line)
		if err := s.dispatch(verb, arg); err != nil {
			return err
		}
	}
}

// splitCommand splits a command line as commands.c does: the verb ends at
// the first space, the argument starts after the spaces that follow.
func splitCommand(line string) (verb, arg string) {
	verb, arg, _ = strings.Cut(line, " ")
	return verb, strings.TrimLeft(arg, " ")
}

func (s *Session) dispatch(verb, arg string) error {
	flush := true
	var err error
	switch ascii.Lower(verb) {
	case "rcpt":
		err, flush = s.rcpt(arg), false
	case "mail":
		err, flush = s.mail(arg), false
	case "data":
		err = s.data()
	case "auth":
		err = s.auth(arg)
	case "quit":
		s.log.Event("Remote end QUIT: quitting")
		s.reply("221 " + s.cfg.Greeting)
		return exitSession{0}
	case "helo":
		s.log.Event("Received HELO " + Clean(arg))
		s.reply("250 " + s.cfg.Greeting)
		s.seenMail = false
		s.dohelo(arg)
	case "ehlo":
		s.ehlo(arg)
	case "rset":
		s.seenMail, s.seenAuth = false, false
		s.mailFrom, s.rcpts = "", nil
		s.log.Event("Session RSET")
		s.reply("250 flushed")
		flush = false
	case "help":
		s.reply("214 netqmail home page: http://qmail.org/netqmail")
	case "noop":
		s.log.Event("NOOP")
		s.reply("250 ok")
	case "vrfy":
		s.log.Event("VRFY requested")
		s.reply("252 send some mail, i'll try my best")
	case "starttls":
		err = s.starttlsCommand(arg)
	default:
		s.log.Event("Unrecognized command")
		s.reply("500 unrecognised (#5.5.2)")
	}
	if err != nil {
		return err
	}
	if flush {
		return s.flush()
	}
	return nil
}

// dohelo remembers the HELO argument for the Received line, where it
// appears only when it differs from the remote host name.
func (s *Session) dohelo(arg string) {
	s.helo, s.heloDiffers = arg, !ascii.EqualFold(arg, s.cfg.Env.RemoteHost)
}

func (s *Session) ehlo(arg string) {
	s.log.Event("Received EHLO " + Clean(arg))
	s.reply("250-" + s.cfg.Greeting)
	if s.tlsAvailable() {
		s.reply("250-STARTTLS")
	}
	s.reply("250-PIPELINING")
	s.reply("250-8BITMIME")
	switch mode := s.authMode(); {
	case mode.login && mode.cram:
		s.reply("250-AUTH LOGIN PLAIN CRAM-MD5")
	case mode.cram:
		s.reply("250-AUTH CRAM-MD5")
	case mode.login:
		s.reply("250-AUTH LOGIN PLAIN")
	}
	s.reply("250 SIZE " + strconv.FormatInt(s.cfg.DataBytes, 10))
	s.seenMail = false
	s.dohelo(arg)
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line up to LF, without the LF and one CR before it.
// A NUL ends the line's meaningful part, as in qmail's C strings. Lines
// longer than MaxLine are consumed and reported as errLineTooLong.
func (s *Session) readLine() (string, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := s.in.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > MaxLine+2 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	if tooLong {
		return "", errLineTooLong
	}
	buf = buf[:len(buf)-1]
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf = buf[:n-1]
	}
	if len(buf) > MaxLine {
		return "", errLineTooLong
	}
	line := string(buf)
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	return line, nil
}

// parseAddr is addrparse: the address, with localiphost applied, and
// whether it fits.
func (s *Session) parseAddr(arg string) (string, bool) {
	addr := ParseAddress(arg)
	if s.cfg.LocalIPHost != "" && s.cfg.IsLocalIP != nil {
		addr = ReplaceLocalIP(addr, s.cfg.LocalIPHost, s.cfg.IsLocalIP)
	}
	return addr, !addressTooLong(addr)
}

func (s *Session) syntaxError(cmd, addr string) {
	s.log.Eventf("%s with too long address (%d bytes) given", cmd, len(addr)+1)
	s.reply("555 syntax error (#5.5.4)")
}

func (s *Session) mail(arg string) error {
	if mode := s.authMode(); mode.required && !s.seenAuth {
		s.log.Event("auth - authorization required")
		s.reply("530 Authorization required (#5.7.1) ")
		return nil
	}
	addr, ok := s.parseAddr(arg)
	if !ok {
		s.syntaxError("MAIL", addr)
		return nil
	}
	if s.mailParameters(arg) {
		s.log.Event("Exceeded DATABYTES limit")
		s.reply("552 sorry, that message size exceeds my databytes limit (#5.3.4)")
		return nil
	}
	if HasRelayCharacters(addr) {
		s.log.Event("Rejecting attempt to use relay characters")
		s.reply("553 we don't relay (#5.7.1)")
		return nil
	}
	s.flagBarf = s.cfg.BadMailFrom.Match(addr)
	s.seenMail = true
	s.mailFrom = addr
	s.rcpts = nil
	s.log.Event("Sender <" + Clean(addr) + ">")
	s.reply("250 ok")
	return nil
}

// mailParameters reads the ESMTP parameters of MAIL the way patch 0008
// does: the argument after its first byte is split at spaces, and any
// word starting SIZE= or AUTH= (any case) counts, but only when a '>'
// appears after the fifth byte. It reports whether SIZE exceeds
// databytes; AUTH= sets TCPREMOTEINFO when nothing set it before.
func (s *Session) mailParameters(arg string) (tooBig bool) {
	if i := strings.IndexByte(arg, '>'); i <= 4 {
		return false
	}
	if arg == "" {
		return false
	}
	for _, word := range strings.Split(arg[1:], " ") {
		switch {
		case len(word) >= 5 && ascii.EqualFold(word[:5], "SIZE="):
			n, _ := scanDigits(word[5:])
			if s.cfg.DataBytes > 0 && n > uint64(s.cfg.DataBytes) {
				return true
			}
		case len(word) >= 5 && ascii.EqualFold(word[:5], "AUTH="):
			if !s.hasInfo {
				s.remoteInfo, s.hasInfo = decodeXtext(word[5:]), true
				s.setEnv("TCPREMOTEINFO", s.remoteInfo)
			}
		}
	}
	return false
}

// scanDigits reads leading decimal digits, saturating instead of wrapping.
func scanDigits(s string) (uint64, bool) {
	var n uint64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if n > (^uint64(0)-d)/10 {
			n = ^uint64(0)
			continue
		}
		n = n*10 + d
	}
	return n, i > 0
}

// decodeXtext decodes the AUTH= value of MAIL as patch 0008 does: "<>"
// becomes "unknown", "+3D" '=' and "+2B" '+' (any case); any other '+'
// is dropped.
func decodeXtext(v string) string {
	if strings.HasPrefix(v, "<>") {
		return "unknown"
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '+' {
			b.WriteByte(v[i])
			continue
		}
		rest := v[i:]
		switch {
		case len(rest) >= 3 && ascii.EqualFold(rest[:3], "+3D"):
			b.WriteByte('=')
			i += 2
		case len(rest) >= 3 && ascii.EqualFold(rest[:3], "+2B"):
			b.WriteByte('+')
			i += 2
		}
	}
	return b.String()
}

func (s *Session) rcpt(arg string) error {
	if !s.seenMail {
		s.log.Event("Attempted RCPT or DATA before MAIL")
		s.reply("503 MAIL first (#5.5.1)")
		return nil
	}
	addr, ok := s.parseAddr(arg)
	if !ok {
		s.syntaxError("RCPT", addr)
		return nil
	}
	if s.flagBarf {
		s.log.Event("Sender address in badmailfrom")
		s.reply("553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)")
		return nil
	}
	if len(s.rcpts) >= MaxRecipients {
		s.log.Event("Too many recipients")
		s.reply(ReplyTooManyRcpts)
		return nil
	}
	if s.isRelay {
		addr += s.relayClient
	} else {
		if HasRelayCharacters(addr) {
			s.log.Event("Rejecting attempt to use relay characters")
			s.reply("553 we don't relay (#5.7.1)")
			return nil
		}
		allowed, err := s.cfg.RcptHosts.Allowed(addr)
		if err != nil {
			return s.dieControl()
		}
		if !allowed {
			if allowed, err = s.tlsVerify(); err != nil {
				return s.dieControl()
			}
		}
		if !allowed {
			s.log.Event("Recipient domain not in rcpthosts <" + Clean(addr) + ">")
			s.reply("553 sorry, that domain isn't in my list of allowed rcpthosts" + s.tlsNoGateway() + " (#5.7.1)")
			return nil
		}
		ok, err := s.rcptCheck(addr)
		if err != nil || !ok {
			return err // rcptCheck answered
		}
	}
	s.rcpts = append(s.rcpts, addr)
	s.log.Event("Recipient <" + Clean(addr) + ">")
	s.reply("250 ok")
	return nil
}

func (s *Session) dieControl() error {
	s.log.Event("Unable to read controls: quitting")
	s.reply("421 unable to read controls (#4.3.0)")
	return exitSession{1}
}

// Errors that make qmail-queue refuse a message on our side.
var (
	errTooManyHops  = errors.New("too many hops")
	errMessageLarge = errors.New("message exceeds databytes")
)

func (s *Session) data() error {
	if !s.seenMail {
		s.log.Event("Attempted RCPT or DATA before MAIL")
		s.reply("503 MAIL first (#5.5.1)")
		return nil
	}
	if len(s.rcpts) == 0 {
		s.log.Event("Attempted DATA before RCPT")
		s.reply("503 RCPT first (#5.5.1)")
		return nil
	}
	s.seenMail = false
	q, err := s.OpenQueue()
	if err != nil {
		var qerr *queue.Error
		if !errors.As(err, &qerr) || qerr.ExitCode != 120 {
			s.log.Event("qqt failure")
			s.reply("451 qqt failure (#4.3.0)")
			return nil
		}
		// The queue program could not be executed: qmail finds out only
		// when it exits 120, after the data, and answers with its text.
		q = &failedQueue{err: qerr}
	}
	qp := q.Pid()
	s.reply("354 go ahead")
	// q buffers what it is given: the sink writes to it directly.
	sink := &messageSink{w: q, limit: s.cfg.DataBytes}
	io.WriteString(q, Received(s.protocol, s.cfg.Env.Local, s.cfg.Env.RemoteIP, s.cfg.Env.RemoteHost, s.remoteInfo, s.hasInfo, s.helo, s.heloDiffers, s.Now()))
	hops, err := ReadData(s.in, sink)
	if err != nil {
		q.Fail(err)
		q.Close(s.mailFrom, nil)
		if errors.Is(err, ErrStrayNewline) {
			s.log.Event("Stray newline: quitting")
			s.reply(ReplyStrayNewline)
			s.flush()
			return exitSession{1}
		}
		return err
	}
	tooManyHops := hops >= MaxHops
	if tooManyHops {
		q.Fail(errTooManyHops)
	}
	if sink.overflow() {
		q.Fail(errMessageLarge)
	}
	// A listener that is shutting down must not close the connection
	// between qmail-queue's success and the 250 reaching the client:
	// the client would send the message again.
	release := s.hold()
	err = q.Close(s.mailFrom, s.rcpts)
	if err == nil {
		s.reply("250 ok " + strconv.FormatInt(s.Now().Unix(), 10) + " qp " + strconv.Itoa(qp))
		s.log.Eventf("Message accepted, qp %d (%d recipients, %d bytes)", qp, len(s.rcpts), sink.n)
		ferr := s.flush()
		release()
		return ferr
	}
	release()
	switch {
	case tooManyHops:
		s.log.Event("Exceeded hop count")
		s.reply("554 too many hops, this message is looping (#5.4.6)")
		return nil
	case sink.overflow():
		s.log.Event("Exceeded DATABYTES limit")
		s.reply("552 sorry, that message size exceeds my databytes limit (#5.3.4)")
		return nil
	}
	var qerr *queue.Error
	if !errors.As(err, &qerr) {
		qerr = &queue.Error{ExitCode: -1, Text: "qq temporary problem (#4.3.0)"}
	}
	code := "451 "
	if qerr.Permanent {
		code = "554 "
	}
	s.reply(code + qerr.Text)
	s.log.Event("Message rejected (" + code + Clean(qerr.Text) + ")")
	return nil
}

// messageSink stores the message bytes of DATA, counting them as qmail's
// put does (bytes as stored, Received line excluded) and dropping
// everything after the databytes limit: the rest of the message is read
// but goes nowhere.
type messageSink struct {
	w     io.Writer
	limit int64 // 0 = none
	n     int64
	one   [1]byte
}

func (m *messageSink) WriteByte(c byte) error {
	m.n++
	if m.limit > 0 && m.n > m.limit {
		return nil
	}
	m.one[0] = c
	_, err := m.w.Write(m.one[:])
	return err
}

// Write stores a run of message bytes: all of them are counted, and only
// those up to the databytes limit are stored, as WriteByte would do one by
// one.
func (m *messageSink) Write(p []byte) (int, error) {
	stored := p
	if m.limit > 0 {
		room := max(m.limit-m.n, 0)
		if int64(len(stored)) > room {
			stored = stored[:room]
		}
	}
	m.n += int64(len(p))
	if len(stored) == 0 {
		return len(p), nil
	}
	if n, err := m.w.Write(stored); err != nil {
		return n, err
	}
	return len(p), nil
}

func (m *messageSink) overflow() bool { return m.limit > 0 && m.n > m.limit }

// failedQueue stands for a queue program that could not be started; it
// swallows the message and reports the start failure at Close.
type failedQueue struct{ err *queue.Error }

func (f *failedQueue) Write(p []byte) (int, error)  { return len(p), nil }
func (f *failedQueue) Pid() int                     { return 0 }
func (f *failedQueue) Fail(error)                   {}
func (f *failedQueue) Close(string, []string) error { return f.err }

// RefuseSession answers a connection whose control files cannot be read
// ("421 unable to read controls") and returns the exit code, 1. pid and
// remoteIP identify the session in the log.
func RefuseSession(conn io.Writer, logw io.Writer, pid int, remoteIP string, cause error) int {
	l := NewLogger(logw, pid, remoteIP)
	l.Event("Unable to read controls: quitting (" + Clean(cause.Error()) + ")")
	io.WriteString(conn, "421 unable to read controls (#4.3.0)\r\n")
	return 1
}
