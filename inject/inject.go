// Package inject is qmail-inject (qmail-inject(8), qmail-header(5)): it
// reads a message, completes and rewrites its header, and queues it
// through qmail-queue; and sendmail, the sendmail-compatible front end
// that runs it.
package inject

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/goqmail/goqmail/internal/ascii"
	"github.com/goqmail/goqmail/internal/getopt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/inject/token822"
	"github.com/goqmail/goqmail/queue"
)

// lineLen is where qmail-inject folds rewritten address lists.
const lineLen = 80

// maxStored bounds what the rewritten header and the recipient lists may
// grow to: rewriting adds the default host and domains to every address,
// so a header within MaxHeader can still expand many times over.
const maxStored = 4 << 20

// Exit codes.
const (
	exitOK   = 0
	exitPerm = 100
	exitTemp = 111
)

// Env looks up an environment variable; ok is false when it is unset. An
// empty value is a value: qmail tells unset from empty.
type Env func(name string) (value string, ok bool)

// Invocation is everything one run of qmail-inject uses from the outside.
type Invocation struct {
	Args   []string // argv, argv[0] included
	Env    Env
	Home   string // the qmail home (control.Home())
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Now    time.Time // the start time: Date, Message-ID, the 'm' VERP
	Pid    int       // this process: Message-ID and the 'm' VERP
}

// exitError ends the run: msg goes to stderr verbatim.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func fatal(code int, format string, args ...any) *exitError {
	return &exitError{code: code, msg: "qmail-inject: fatal: " + fmt.Sprintf(format, args...)}
}

func errParse(line []byte) *exitError {
	return &exitError{code: exitPerm, msg: "qmail-inject: fatal: unable to parse this line:\n" + string(line)}
}

var (
	errReadFatal = fatal(exitTemp, "read error\n")
	errTooLarge  = fatal(exitPerm, "%v\n", errHeaderTooLarge)
	// errRewrittenTooLarge: the header fits MaxHeader but its rewritten
	// form and recipient lists pass maxStored.
	errRewrittenTooLarge = fatal(exitPerm, "rewritten message header larger than %d bytes\n", maxStored)
)

// Recipient strategies (qmail-inject -a, -h, -A, -H).
const (
	recipDefault = iota // -A: arguments if any, else header
	recipArgs           // -a
	recipHeader         // -h
	recipBoth           // -H
)

// injector is the state of one run.
type injector struct {
	inv Invocation

	// QMAILINJECT letters
	nameComment  bool // c
	deleteSender bool // s
	deleteFrom   bool // f
	deleteMessID bool // i
	verpRecip    bool // r
	verpMess     bool // m

	mailUser, mailRUser string
	mailHost, mailRHost string
	haveHost, haveRHost bool
	fullName            string
	haveFullName        bool

	rw     rewriter
	idHost string
	mft    map[string]bool // QMAILMFTFILE entries, lower case; nil when unset

	queueIt    bool
	sender     string
	haveSender bool

	seen      [numFieldTypes]bool
	saved     [][]byte // header fields to write, in order
	stored    int      // bytes held in saved and the lists below
	hr        []string // To, Cc, Bcc, Apparently-To recipients
	toCc      []string // To and Cc recipients, for Mail-Followup-To
	hrr       []string // Resent-To, -Cc, -Bcc recipients
	argRecips []string

	out    *bufio.Writer // with -n
	client *queue.Client // otherwise, once the header is done
}

// Run is qmail-inject. It returns the exit code.
func Run(inv Invocation) int {
	in := &injector{inv: inv, queueIt: true}
	err := in.run()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = fatal(exitTemp, "%v\n", err)
	}
	if ee.msg != "" {
		io.WriteString(inv.Stderr, ee.msg)
	}
	return ee.code
}

func (in *injector) env(names ...string) (string, bool) {
	for _, n := range names {
		if v, ok := in.inv.Env(n); ok {
			return v, true
		}
	}
	return "", false
}

func (in *injector) run() error {
	in.readEnv()
	if err := in.readControls(); err != nil {
		return err
	}
	strategy := recipDefault
	g := newGetopt(in.inv.Args, "aAhHnNf:", in.inv.Stderr)
	for {
		opt := g.Next()
		if opt == getopt.Done {
			break
		}
		switch opt {
		case 'a':
			strategy = recipArgs
		case 'A':
			strategy = recipDefault
		case 'h':
			strategy = recipHeader
		case 'H':
			strategy = recipBoth
		case 'n':
			in.queueIt = false
		case 'N':
			in.queueIt = true
		case 'f':
			if err := in.setSender(g.Arg()); err != nil {
				return err
			}
		default:
			return &exitError{code: exitPerm}
		}
	}
	args := g.Rest()
	if strategy == recipDefault {
		strategy = recipHeader
		if len(args) > 0 {
			strategy = recipArgs
		}
	}
	if strategy != recipHeader {
		for _, a := range args {
			if err := in.addArgRecipient(a); err != nil {
				return err
			}
		}
	}
	if !in.queueIt {
		in.out = bufio.NewWriterSize(in.inv.Stdout, 64<<10)
	}
	err := splitMessage(in.inv.Stdin, in.headerField, in.finishHeader)
	if err != nil {
		if in.client != nil {
			in.client.Fail(err)
			in.client.Close("", nil)
		}
		var re *readError
		switch {
		case errors.As(err, &re):
			return errReadFatal
		case errors.Is(err, errHeaderTooLarge):
			return errTooLarge
		}
		return err
	}
	return in.finish(strategy != recipArgs)
}

// readEnv takes qmail-inject's settings from the environment.
func (in *injector) readEnv() {
	flags, _ := in.env("QMAILINJECT")
	for _, c := range flags {
		switch c {
		case 'c':
			in.nameComment = true
		case 's':
			in.deleteSender = true
		case 'f':
			in.deleteFrom = true
		case 'i':
			in.deleteMessID = true
		case 'r':
			in.verpRecip = true
		case 'm':
			in.verpMess = true
		}
	}
	in.mailHost, in.haveHost = in.env("QMAILHOST", "MAILHOST")
	in.mailRHost, in.haveRHost = in.env("QMAILSHOST")
	if !in.haveRHost {
		in.mailRHost, in.haveRHost = in.mailHost, in.haveHost
	}
	var ok bool
	if in.mailUser, ok = in.env("QMAILUSER", "MAILUSER", "USER", "LOGNAME"); !ok {
		in.mailUser = "anonymous"
	}
	if in.mailRUser, ok = in.env("QMAILSUSER"); !ok {
		in.mailRUser = in.mailUser
	}
	in.fullName, in.haveFullName = in.env("QMAILNAME", "MAILNAME", "NAME")
	// Environment strings are C strings in qmail.
	in.mailHost, in.mailRHost = cString(in.mailHost), cString(in.mailRHost)
	in.mailUser, in.mailRUser = cString(in.mailUser), cString(in.mailRUser)
	in.fullName = cString(in.fullName)
}

// readControls reads QMAILMFTFILE, then defaultdomain, defaulthost,
// plusdomain and idhost with their environment overrides (getcontrols).
func (in *injector) readControls() error {
	if path, ok := in.env("QMAILMFTFILE"); ok {
		if err := in.readMFT(path); err != nil {
			return err
		}
	}
	if st, err := os.Stat(in.inv.Home); err != nil || !st.IsDir() {
		return fatal(exitTemp, "internal bug\n")
	}
	ctl, err := control.Open(in.inv.Home)
	if err != nil {
		return errReadFatal
	}
	setting := func(file, envName string) (string, error) {
		v, err := ctl.LineDefault(file, true, file)
		if err != nil {
			return "", errReadFatal
		}
		if e, ok := in.env(envName); ok {
			v = e
		}
		return v, nil
	}
	tokens := func(s string) ([]token822.Token, error) {
		toks, err := token822.Parse([]byte(s))
		if err != nil {
			return nil, errParse([]byte(s))
		}
		return toks, nil
	}
	v, err := setting("defaultdomain", "QMAILDEFAULTDOMAIN")
	if err == nil {
		in.rw.defaultDomain, err = tokens("." + v)
	}
	if err == nil {
		v, err = setting("defaulthost", "QMAILDEFAULTHOST")
	}
	if err == nil {
		in.rw.defaultHost, err = tokens("@" + v)
	}
	if err == nil {
		v, err = setting("plusdomain", "QMAILPLUSDOMAIN")
	}
	if err == nil {
		in.rw.plusDomain, err = tokens("." + v)
	}
	if err == nil {
		in.idHost, err = setting("idhost", "QMAILIDHOST")
	}
	return err
}

// readMFT loads the mailing lists of QMAILMFTFILE; a missing file means
// none.
func (in *injector) readMFT(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errReadFatal
	}
	defer f.Close()
	lines, err := control.ParseList(f)
	if err != nil {
		return errReadFatal
	}
	in.mft = make(map[string]bool, len(lines))
	for _, l := range lines {
		in.mft[ascii.Lower(l)] = true
	}
	return nil
}

// setSender is -f: the argument, quoted as needed and completed like any
// address, becomes the envelope sender.
func (in *injector) setSender(arg string) error {
	q := quoteAddr(arg)
	toks, err := token822.Parse([]byte(q))
	if err != nil {
		return errParse([]byte(q))
	}
	in.sender = token822.Unquote(reversedCopy(in.rw.generic(reversedCopy(toks))))
	in.haveSender = true
	return nil
}

// addArgRecipient takes a recipient from the command line (dorecip).
func (in *injector) addArgRecipient(arg string) error {
	toks, err := token822.Parse([]byte(quoteAddr(arg)))
	if err != nil {
		return fatal(exitPerm, "unable to parse address: %s\n", cString(arg))
	}
	in.argRecips = append(in.argRecips, envelopeAddr(in.rw.generic(reversedCopy(toks))))
	return nil
}

// store accounts for header data kept until the end.
func (in *injector) store(n int) error {
	in.stored += n
	if in.stored > maxStored {
		return errRewrittenTooLarge
	}
	return nil
}

// recipientRewriter rewrites the addresses of a recipient field and
// appends their envelope form to each of lists. Once the header is over
// its memory budget it stops rewriting: the field is then refused.
func (in *injector) recipientRewriter(lists ...*[]string) func([]token822.Token) []token822.Token {
	return func(addr []token822.Token) []token822.Token {
		if in.stored > maxStored {
			return addr
		}
		addr = in.rw.generic(addr)
		a := envelopeAddr(addr)
		for _, l := range lists {
			*l = append(*l, a)
			in.stored += len(a)
		}
		return addr
	}
}

// headerField processes one header field (doheaderfield).
func (in *injector) headerField(h []byte) error {
	ht := knownField(h)
	switch {
	case in.deleteFrom && ht == fieldFrom,
		in.deleteMessID && ht == fieldMessageID,
		in.deleteSender && ht == fieldReturnPath:
		return nil
	}
	if ht != fieldUnknown {
		in.seen[ht] = true
	} else if !validField(h) {
		return &exitError{code: exitPerm, msg: "qmail-inject: fatal: invalid header field: " + string(h)}
	}
	var rw func([]token822.Token) []token822.Token
	switch ht {
	case fieldTo, fieldCc:
		rw = in.recipientRewriter(&in.hr, &in.toCc)
	case fieldBcc, fieldApparentlyTo:
		rw = in.recipientRewriter(&in.hr)
	case fieldResentTo, fieldResentCc, fieldResentBcc:
		rw = in.recipientRewriter(&in.hrr)
	case fieldReturnPath:
		rw = in.rewriteReturn
	case fieldSender, fieldFrom, fieldReplyTo, fieldReturnReceiptTo, fieldErrorsTo,
		fieldResentSender, fieldResentFrom, fieldResentReplyTo:
		rw = in.rw.generic
	}
	if rw != nil {
		toks, err := token822.Parse(h)
		if err != nil {
			return errParse(h)
		}
		toks, err = token822.AddrList(toks, rw)
		if err != nil {
			return errParse(h)
		}
		if in.stored > maxStored {
			return errRewrittenTooLarge
		}
		h = token822.Unparse(toks, lineLen)
	}
	switch ht {
	case fieldBcc, fieldResentBcc, fieldReturnPath, fieldContentLength:
		return nil
	}
	if err := in.store(len(h)); err != nil {
		return err
	}
	in.saved = append(in.saved, append([]byte(nil), h...))
	return nil
}

// rewriteReturn rewrites a Return-Path address; the first one seen (the
// rightmost of the first field) sets the envelope sender unless -f did.
func (in *injector) rewriteReturn(addr []token822.Token) []token822.Token {
	addr = in.rw.generic(addr)
	if !in.haveSender {
		in.sender = envelopeAddr(addr)
		if in.verpRecip {
			in.sender += "-@[]"
		}
		in.haveSender = true
	}
	return addr
}

// write sends message bytes to stdout (-n) or the queue.
func (in *injector) write(s string) {
	if in.out != nil {
		in.out.WriteString(s)
		return
	}
	in.client.WriteString(s)
}

// sink is where the body goes.
func (in *injector) sink() io.Writer {
	if in.out != nil {
		return in.out
	}
	return in.client
}

// resent reports whether the message is being resent (qmail-header(5)):
// it has a Resent- field.
func (in *injector) resent() bool {
	for _, t := range []fieldType{fieldResentSender, fieldResentFrom, fieldResentReplyTo, fieldResentTo,
		fieldResentCc, fieldResentBcc, fieldResentDate, fieldResentMessageID} {
		if in.seen[t] {
			return true
		}
	}
	return false
}

// finishHeader writes the completed header (finishheader): the fields
// qmail-inject adds, then the saved ones.
func (in *injector) finishHeader() (io.Writer, error) {
	resent := in.resent()
	if !in.haveSender {
		if err := in.defaultReturnPath(); err != nil {
			return nil, err
		}
	}
	if !in.queueIt {
		in.write("Return-Path: <" + quoteAddr(in.sender) + ">\n")
	} else {
		c, err := queue.Open(in.inv.Home)
		if err != nil {
			var qe *queue.Error
			if errors.As(err, &qe) {
				return nil, fatal(exitTemp, "%s\n", qe.Text)
			}
			return nil, fatal(exitTemp, "unable to run qmail-queue\n")
		}
		in.client = c
	}
	prefix := ""
	if resent {
		prefix = "Resent-"
	}
	dateSeen, idSeen, fromSeen := in.seen[fieldDate], in.seen[fieldMessageID], in.seen[fieldFrom]
	if resent {
		dateSeen, idSeen, fromSeen = in.seen[fieldResentDate], in.seen[fieldResentMessageID], in.seen[fieldResentFrom]
	}
	if !dateSeen {
		in.write(prefix + dateField(in.inv.Now))
	}
	if !idSeen {
		in.write(prefix + messageIDField(in.idHost, in.inv.Now, in.inv.Pid))
	}
	if !fromSeen {
		from, err := in.defaultFrom()
		if err != nil {
			return nil, err
		}
		in.write(prefix + from)
	}
	if resent {
		if !in.seen[fieldResentTo] && !in.seen[fieldResentCc] {
			in.write("Resent-Cc: recipient list not shown: ;\n")
		}
	} else {
		if !in.seen[fieldTo] && !in.seen[fieldCc] {
			in.write("Cc: recipient list not shown: ;\n")
		}
		in.mailFollowupTo()
	}
	for _, h := range in.saved {
		in.write(string(h))
	}
	in.saved = nil
	return in.sink(), nil
}

// mailFollowupTo adds Mail-Followup-To listing To and Cc when one of them
// is a list named in QMAILMFTFILE and the message has none.
func (in *injector) mailFollowupTo() {
	if in.mft == nil || in.seen[fieldMailFollowupTo] {
		return
	}
	found := false
	for _, a := range in.toCc {
		if in.mft[ascii.Lower(a)] {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var b strings.Builder
	b.WriteString("Mail-Followup-To: ")
	for i := len(in.toCc) - 1; i >= 0; i-- {
		b.WriteString(quoteAddr(in.toCc[i]))
		if i > 0 {
			b.WriteString(",\n  ")
		}
	}
	b.WriteString("\n")
	in.write(b.String())
}

// defaultFrom builds the From field qmail-inject adds (defaultfrommake):
// "Name" <user@host>, or user@host (Name) with the 'c' flag, completed as
// any sender address.
func (in *injector) defaultFrom() (string, error) {
	userType := token822.Atom
	if quoteNeeded(in.mailUser) {
		userType = token822.Quote
	}
	toks := []token822.Token{{Type: token822.Atom, Text: "From"}, {Type: token822.Colon}}
	angle := in.haveFullName && !in.nameComment
	if angle {
		toks = append(toks, token822.Token{Type: token822.Quote, Text: in.fullName}, token822.Token{Type: token822.Left})
	}
	toks = append(toks, token822.Token{Type: userType, Text: in.mailUser})
	if in.haveHost {
		toks = append(toks, token822.Token{Type: token822.At}, token822.Token{Type: token822.Atom, Text: in.mailHost})
	}
	if angle {
		toks = append(toks, token822.Token{Type: token822.Right})
	}
	if in.haveFullName && in.nameComment {
		toks = append(toks, token822.Token{Type: token822.Comment, Text: in.fullName})
	}
	return in.reparse(toks, in.rw.generic)
}

// reparse writes tokens out, reads them back and rewrites the addresses,
// as qmail does for the fields it makes itself.
func (in *injector) reparse(toks []token822.Token, rw func([]token822.Token) []token822.Token) (string, error) {
	line := token822.Unparse(toks, lineLen)
	toks, err := token822.Parse(line)
	if err != nil {
		return "", errParse(line)
	}
	toks, err = token822.AddrList(toks, rw)
	if err != nil {
		return "", errParse(line)
	}
	return string(token822.Unparse(toks, lineLen)), nil
}

// defaultReturnPath sets the envelope sender when neither -f nor a
// Return-Path field did (dodefaultreturnpath): QMAILSUSER@QMAILSHOST or
// the From defaults, with the VERP suffixes of the 'm' and 'r' flags.
func (in *injector) defaultReturnPath() error {
	user := in.mailRUser
	if in.verpMess {
		user += "-" + strconv.FormatInt(in.inv.Now.Unix(), 10) + "." + strconv.Itoa(in.inv.Pid)
	}
	if in.verpRecip {
		user += "-"
	}
	toks := []token822.Token{{Type: token822.Atom, Text: "Return-Path"}, {Type: token822.Colon}, {Type: token822.Quote, Text: user}}
	if in.haveRHost {
		toks = append(toks, token822.Token{Type: token822.At}, token822.Token{Type: token822.Atom, Text: in.mailRHost})
	}
	_, err := in.reparse(toks, in.rewriteReturn)
	return err
}

// finish sends the envelope and waits for the queue (exitnicely).
func (in *injector) finish(headerRecips bool) error {
	if in.out != nil {
		if err := in.out.Flush(); err != nil {
			return fatal(exitTemp, "unable to write output: %v\n", err)
		}
		return nil
	}
	recips := in.argRecips
	if headerRecips {
		if in.resent() {
			recips = append(recips, in.hrr...)
		} else {
			recips = append(recips, in.hr...)
		}
	}
	for i, r := range recips {
		recips[i] = cString(r)
	}
	err := in.client.Close(cString(in.sender), recips)
	if err == nil {
		return nil
	}
	var qe *queue.Error
	if errors.As(err, &qe) {
		code := exitTemp
		if qe.Permanent {
			code = exitPerm
		}
		return fatal(code, "%s\n", qe.Text)
	}
	return fatal(exitTemp, "%v\n", err)
}
