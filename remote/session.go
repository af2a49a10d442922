package remote

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/goqmail/goqmail/control"
)

// Outcome is qmail-remote's message report: 'K' delivered, 'Z' try
// again later, 'D' give up; Text ends with "\n".
type Outcome struct {
	Kind byte
	Text string
}

// recipientReport is one per-recipient line: 'r' accepted, 'h'
// rejected permanently, 's' rejected temporarily.
type recipientReport struct {
	Kind byte
	Text string
}

// deadlineConn applies qmail's timeoutread/timeoutwrite: every single
// read and write must finish within timeout. While a reply is awaited,
// replyBy also bounds the reads: qmail-control(5) gives timeoutremote
// for each response, and a peer dripping a byte at a time must not
// stretch one reply without end.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	replyBy time.Time // zero: no reply pending
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	deadline := time.Now().Add(c.timeout)
	if !c.replyBy.IsZero() && c.replyBy.Before(deadline) {
		deadline = c.replyBy
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// session is one SMTP conversation with one connected address.
type session struct {
	ctl      *control.Files
	conn     net.Conn      // the current transport: TCP, later TLS
	tcp      *deadlineConn // the TCP connection under conn, for reply deadlines
	r        *bufio.Reader
	w        *bufio.Writer
	timeout  time.Duration
	partner  string // the peer address as reports print it
	fqdn     string // the exchanger's name, for tlshosts/
	helohost string
	route    Route
	implicit bool // TLS from the first byte (route to port 465)
	// implicitPolicy is the tlshosts/ verdict for an implicit TLS route.
	implicitPolicy tlsPolicy

	sender     string // already quoted
	recipients []string
	message    io.Reader
	size       int64 // -1 when unknown

	last     Reply // the reply quoted in the next report
	critical bool  // the final dot is on its way: a drop may duplicate
	tlsOn    bool
	ehloKeys []string // EHLO keywords (upper case) with their parameters

	reports []recipientReport

	// keep: the caller keeps the connection after an accepted message
	// (ConnCache), so that message's session ends without QUIT, and
	// kept is set.
	keep bool
	kept bool
	// reused: the session continues on a kept connection, past EHLO
	// and AUTH. Should the peer turn out to have gone before it accepts
	// MAIL FROM, the transaction ends with staleConn, reporting nothing.
	reused bool
	// policy is the tlshosts/ verdict the session was set up under;
	// authed that it logged in.
	policy tlsPolicy
	authed bool
}

// staleConn ends a transaction on a kept connection that the peer had
// already given up: the message goes on a new connection and nothing of
// this one is reported.
var staleConn = &Outcome{'Z', "kept connection found closed\n"}

func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.r = bufio.NewReaderSize(c, 4096)
	s.w = bufio.NewWriterSize(c, 16*1024)
}

// remoteSaid is the "Remote host said: " paragraph of the last reply,
// NULs shown as '?', consumed once.
func (s *session) remoteSaid() string {
	if len(s.last.Text) == 0 {
		return ""
	}
	text := strings.ReplaceAll(string(s.last.Text), "\x00", "?")
	s.last.Text = nil
	return "Remote host said: " + text
}

// quit is qmail's quit(): send QUIT without waiting for the answer and
// report prefix+partner+suffix+".\n" and the last reply.
func (s *session) quit(kind byte, prefix, suffix string) *Outcome {
	s.sendQuit()
	return &Outcome{Kind: kind, Text: prefix + s.partner + suffix + ".\n" + s.remoteSaid()}
}

func (s *session) sendQuit() {
	s.w.WriteString("QUIT\r\n")
	s.w.Flush()
}

// dropped is the report for a connection that died or timed out.
func (s *session) dropped() *Outcome {
	text := "Connected to " + s.partner + " but connection died. "
	if s.critical {
		text += "Possible duplicate! "
	}
	return &Outcome{Kind: 'Z', Text: text + "(#4.4.2)\n"}
}

// command sends one line and flushes it.
func (s *session) command(line string) *Outcome {
	if _, err := s.w.WriteString(line + "\r\n"); err != nil {
		return s.dropped()
	}
	if err := s.w.Flush(); err != nil {
		return s.dropped()
	}
	return nil
}

// reply reads the next reply into s.last.
func (s *session) reply() (int, *Outcome) {
	if s.tcp != nil {
		s.tcp.replyBy = time.Now().Add(s.timeout)
		defer func() { s.tcp.replyBy = time.Time{} }()
	}
	rep, err := readReply(s.r)
	if err != nil {
		return 0, s.dropped()
	}
	s.last = rep
	return rep.Code, nil
}

func (s *session) ask(line string) (int, *Outcome) {
	if o := s.command(line); o != nil {
		return 0, o
	}
	return s.reply()
}

// ehlo sends EHLO and remembers the keywords of a 250 answer.
func (s *session) ehlo() (int, *Outcome) {
	s.ehloKeys = nil
	code, o := s.ask("EHLO " + s.helohost)
	if o != nil || code != 250 {
		return code, o
	}
	if len(s.last.Lines) > 1 {
		for _, l := range s.last.Lines[1:] {
			s.ehloKeys = append(s.ehloKeys, strings.ToUpper(strings.TrimSpace(l)))
		}
	}
	return code, nil
}

// extension returns the parameters of an EHLO keyword; patch 0010 also
// accepts the old "AUTH=LOGIN" spelling.
func (s *session) extension(name string) (string, bool) {
	for _, k := range s.ehloKeys {
		if k == name {
			return "", true
		}
		if rest, ok := strings.CutPrefix(k, name); ok && (rest[0] == ' ' || rest[0] == '=') {
			return strings.TrimSpace(rest[1:]), true
		}
	}
	return "", false
}

// run holds the whole conversation and returns the message report.
func (s *session) run() *Outcome {
	var code int
	var o *Outcome
	if s.implicit {
		if o := s.startTLS(s.implicitPolicy); o != nil {
			return o
		}
		if code, o = s.reply(); o != nil {
			return o
		}
		if code != 220 {
			return s.quit('Z', "TLS Connected to ", " but greeting failed")
		}
		s.policy = s.implicitPolicy
	} else {
		if code, o = s.reply(); o != nil {
			return o
		}
		if code >= 500 {
			return s.quit('D', "Connected to ", " but greeting failed")
		}
		if code != 220 {
			return s.quit('Z', "Connected to ", " but greeting failed")
		}
	}
	if code, o = s.ehlo(); o != nil {
		return o
	}
	if !s.implicit {
		policy, err := decideTLS(s.ctl, s.fqdn)
		if err != nil {
			s.sendQuit()
			return &Outcome{'Z', "Unable to read control files. (#4.3.0)\n"}
		}
		s.policy = policy
		if !policy.never {
			started, o := s.tryStartTLS(policy, code)
			if o != nil {
				return o
			}
			if started {
				if code, o = s.ehlo(); o != nil {
					return o
				}
			}
		}
	}
	if code != 250 {
		if code, o = s.ask("HELO " + s.helohost); o != nil {
			return o
		}
		if code >= 500 {
			return s.quit('D', "Connected to ", " but my name was rejected")
		}
		if code != 250 {
			return s.quit('Z', "Connected to ", " but my name was rejected")
		}
	}
	if s.route.HasAuth() {
		if s.authed, o = s.authenticate(); o != nil {
			return o
		}
	}
	return s.transaction(s.mailParams())
}

// mailParams are MAIL FROM's parameters for this message.
func (s *session) mailParams() string {
	params := ""
	if s.authed {
		params += " AUTH=" + authParam(s.route.User)
	}
	if _, ok := s.extension("SIZE"); ok && s.size >= 0 {
		params += " SIZE=" + strconv.FormatInt(s.size, 10)
	}
	if _, ok := s.extension("8BITMIME"); ok {
		params += " BODY=8BITMIME"
	}
	return params
}

// resume is run on a kept connection: the session is already past
// EHLO, STARTTLS and AUTH, and the last transaction is complete.
func (s *session) resume(cc *cachedConn) *Outcome {
	s.tcp, s.conn, s.r, s.w = cc.tcp, cc.conn, cc.r, cc.w
	s.tcp.timeout = s.timeout
	s.tlsOn, s.policy, s.ehloKeys, s.authed = cc.tlsOn, cc.policy, cc.ehlo, cc.authed
	s.reused = true
	return s.transaction(s.mailParams())
}

// keepConn is the session's connection for the ConnCache after an
// accepted message (s.kept).
func (s *session) keepConn(key connKey) *cachedConn {
	return &cachedConn{key: key, tcp: s.tcp, conn: s.conn, r: s.r, w: s.w,
		tlsOn: s.tlsOn, policy: s.policy, ehlo: s.ehloKeys, authed: s.authed}
}

// transaction is MAIL, RCPT, DATA and the message, pipelined when the
// peer offers PIPELINING (RFC 2920: DATA ends the group).
func (s *session) transaction(mailParams string) *Outcome {
	_, pipelining := s.extension("PIPELINING")
	lines := []string{"MAIL FROM:<" + s.sender + ">" + mailParams}
	for _, rcpt := range s.recipients {
		lines = append(lines, "RCPT TO:<"+rcpt+">")
	}
	lines = append(lines, "DATA")
	send := func(line string) *Outcome {
		if _, err := s.w.WriteString(line + "\r\n"); err != nil {
			return s.dropped()
		}
		return nil
	}
	if pipelining {
		for _, l := range lines {
			if o := send(l); o != nil {
				return s.staleOr(o)
			}
		}
		if err := s.w.Flush(); err != nil {
			return s.staleOr(s.dropped())
		}
	}
	next := 0
	step := func() (int, *Outcome) {
		line := lines[next]
		next++
		if !pipelining {
			return s.ask(line)
		}
		return s.reply()
	}
	code, o := step()
	if o != nil {
		return s.staleOr(o)
	}
	if code == 421 && s.reused {
		// The peer is closing the kept connection (RFC 5321 3.8).
		return staleConn
	}
	if code >= 500 {
		return s.quit('D', "Connected to ", " but sender was rejected")
	}
	if code >= 400 {
		return s.quit('Z', "Connected to ", " but sender was rejected")
	}
	accepted := false
	for range s.recipients {
		code, o := step()
		if o != nil {
			return o
		}
		switch {
		case code >= 500:
			s.reports = append(s.reports, recipientReport{'h', s.partner + " does not like recipient.\n" + s.remoteSaid()})
		case code >= 400:
			s.reports = append(s.reports, recipientReport{'s', s.partner + " does not like recipient.\n" + s.remoteSaid()})
		default:
			s.reports = append(s.reports, recipientReport{'r', ""})
			accepted = true
		}
	}
	if !accepted {
		// A pipelined DATA may have been answered with 354 although
		// no recipient was accepted; the QUIT then lands in the data
		// and closing the connection without a final dot discards it.
		return s.quit('D', "Giving up on ", "")
	}
	code, o = step()
	if o != nil {
		return o
	}
	if code >= 500 {
		return s.quit('D', "", " failed on DATA command")
	}
	if code >= 400 {
		return s.quit('Z', "", " failed on DATA command")
	}
	if err := writeBody(s.w, s.message); err != nil {
		var re *readError
		switch {
		case errors.Is(err, errPartialLine):
			return &Outcome{'D', "SMTP cannot transfer messages with partial final lines. (#5.6.2)\n"}
		case errors.As(err, &re):
			return &Outcome{'Z', "Unable to read message. (#4.3.0)\n"}
		}
		return s.dropped()
	}
	// From the final dot on, a lost connection may follow a delivery.
	s.critical = true
	if _, err := s.w.WriteString(".\r\n"); err != nil {
		return s.dropped()
	}
	if err := s.w.Flush(); err != nil {
		return s.dropped()
	}
	code, o = s.reply()
	if o != nil {
		return o
	}
	s.critical = false
	if code >= 500 {
		return s.quit('D', "", " failed after I sent the message")
	}
	if code >= 400 {
		return s.quit('Z', "", " failed after I sent the message")
	}
	if s.keep {
		// No QUIT: the connection is kept for the next message.
		s.kept = true
		return &Outcome{Kind: 'K', Text: s.partner + " accepted message.\n" + s.remoteSaid()}
	}
	return s.quit('K', "", " accepted message")
}

// staleOr is o, the outcome of a failure before the peer answered MAIL
// FROM, or staleConn on a kept connection.
func (s *session) staleOr(o *Outcome) *Outcome {
	if s.reused {
		return staleConn
	}
	return o
}

// tryStartTLS is patch 0010's tls_init for STARTTLS. started reports
// whether the conversation now runs over TLS.
func (s *session) tryStartTLS(policy tlsPolicy, ehloCode int) (started bool, o *Outcome) {
	_, offered := s.extension("STARTTLS")
	if ehloCode != 250 || !offered {
		if policy.caFile == "" {
			return false, nil
		}
		s.last.Text = nil
		return false, s.tlsQuit("ZNo TLS achieved while " + policy.caFile + " exists")
	}
	code, o := s.ask("STARTTLS")
	if o != nil {
		return false, o
	}
	if code != 220 {
		if policy.caFile == "" {
			return false, nil
		}
		return false, s.tlsQuit("ZSTARTTLS rejected while " + policy.caFile + " exists")
	}
	s.last.Text = nil
	if o := s.startTLS(policy); o != nil {
		return false, o
	}
	return true, nil
}

// tlsQuit ends a TLS failure report with "; connected to IP." (or
// "connecting to" before the handshake completed).
func (s *session) tlsQuit(text string) *Outcome {
	tail := "; connecting to "
	if s.tlsOn {
		tail = "; connected to "
	}
	out := s.quit(0, tail, "")
	return &Outcome{Kind: text[0], Text: text[1:] + out.Text}
}

// startTLS runs the handshake on the current connection and, when the
// policy requires it, checks the server's certificate.
func (s *session) startTLS(policy tlsPolicy) *Outcome {
	cfg, err := clientTLSConfig(s.ctl, s.fqdn)
	if err != nil {
		return &Outcome{'Z', "Unable to read control files. (#4.3.0)\n"}
	}
	tc := tls.Client(s.conn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		// No QUIT: the stream is in no state to carry one.
		return &Outcome{'Z', "TLS connect failed: " + outsafeText(err.Error()) + "; connected to " + s.partner + ".\n"}
	}
	s.setConn(tc)
	s.tlsOn = true
	if policy.caFile != "" {
		if text := verifyServer(tc.ConnectionState(), policy, s.fqdn); text != "" {
			s.last.Text = nil
			return s.tlsQuit(text)
		}
	}
	return nil
}

// outsafeText keeps error texts on one line.
func outsafeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// authenticate is patch 0008's smtp_auth: CRAM-MD5, else PLAIN, else
// LOGIN, whichever the peer offers first in that order. authed is false
// when the peer offers none of them; the message then goes without
// AUTH.
func (s *session) authenticate() (authed bool, o *Outcome) {
	params, ok := s.extension("AUTH")
	if !ok {
		return false, nil
	}
	offered := map[string]bool{}
	for _, m := range strings.Fields(params) {
		offered[m] = true
	}
	switch {
	case offered["CRAM-MD5"]:
		return true, s.authCRAM()
	case offered["PLAIN"]:
		return true, s.authPlain()
	case offered["LOGIN"]:
		return true, s.authLogin()
	}
	return false, nil
}

// authRejected is patch 0008's failure report. Its texts end in "." and
// quit() adds another: netqmail with the patch prints "..", and so do we.
func (s *session) authRejected(what string) *Outcome {
	return s.quit('Z', "Connected to ", " but authentication was rejected ("+what+").")
}

// authResult reads the answer to the last AUTH step.
func (s *session) authResult(line, what string) *Outcome {
	code, o := s.ask(line)
	if o != nil {
		return o
	}
	switch code {
	case 235:
		return nil
	case 432:
		return s.quit('Z', "Connected to ", " but password expired.")
	}
	return s.authRejected(what)
}

func (s *session) authStart(mech string) *Outcome {
	code, o := s.ask("AUTH " + mech)
	if o != nil {
		return o
	}
	if code != 334 {
		return s.authRejected("AUTH " + mech)
	}
	return nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func (s *session) authPlain() *Outcome {
	if o := s.authStart("PLAIN"); o != nil {
		return o
	}
	// authorization identity = authentication identity = user
	_, ir, err := sasl.NewPlainClient(s.route.User, s.route.User, s.route.Password).Start()
	if err != nil {
		return s.quit('Z', "Connected to ", " but unable to base64encode (plain).")
	}
	return s.authResult(b64(ir), "plain")
}

func (s *session) authLogin() *Outcome {
	if o := s.authStart("LOGIN"); o != nil {
		return o
	}
	code, o := s.ask(b64([]byte(s.route.User)))
	if o != nil {
		return o
	}
	if code != 334 {
		return s.authRejected("username")
	}
	return s.authResult(b64([]byte(s.route.Password)), "password")
}

func (s *session) authCRAM() *Outcome {
	if o := s.authStart("CRAM-MD5"); o != nil {
		return o
	}
	var challenge []byte
	if len(s.last.Lines) > 0 {
		var err error
		challenge, err = base64.StdEncoding.DecodeString(strings.TrimSpace(s.last.Lines[0]))
		if err != nil {
			return s.quit('Z', "Connected to ", " but unable to base64decode challenge.")
		}
	}
	answer := s.route.User + " " + cramDigest(challenge, s.route.Password)
	return s.authResult(b64([]byte(answer)), "username+digest")
}

// cramDigest is RFC 2195's answer: hex HMAC-MD5 of the challenge keyed
// with the password.
func cramDigest(challenge []byte, password string) string {
	mac := hmac.New(md5.New, []byte(password))
	mac.Write(challenge)
	return hex.EncodeToString(mac.Sum(nil))
}

// authParam is MAIL FROM's AUTH= value after a successful login. Patch
// 0008 sent the xtext of the login name whatever it was; RFC 4954 wants
// a mailbox there, and servers such as go-smtp's refuse the whole MAIL
// command otherwise. A login name that is a mailbox is sent as the
// patch did; any other is announced as "<>" (identity not disclosed).
func authParam(user string) string {
	if strings.IndexByte(user, '@') > 0 {
		return xtext(user)
	}
	return "<>"
}
