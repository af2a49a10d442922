package admin

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/queue"
)

// Compile-time constants of netqmail that goqmail keeps (conf-break,
// conf-patrn, conf-spawn); the split is queue.Split.
const (
	UserExtDelimiter = "-"
	Paternalism      = 0o002 // stat bits refused on ~ and ~/.qmail
	ConcurrencyLimit = 120   // the spawners' silent concurrency limit
)

// showSpec is qmail-showctl's sentence for one control file: what it
// prints for a missing file (def) and around each value (pre, post).
type showSpec struct {
	name      string
	def       string
	pre, post string
}

// qmailShowOrder is netqmail's qmail-showctl, file by file, in its order
// and wording. rcpthosts and morercpthosts are handled apart, as there.
var qmailShowOrder = []showSpec{
	{"badmailfrom", "Any MAIL FROM is allowed.", "", " not accepted in MAIL FROM."},
	{"bouncefrom", "MAILER-DAEMON", "Bounce user name is ", ""},
	{"bouncehost", "bouncehost", "Bounce host name is ", ""},
	{"concurrencylocal", "10", "Local concurrency is ", ""},
	{"concurrencyremote", "20", "Remote concurrency is ", ""},
	{"databytes", "0", "SMTP DATA limit is ", " bytes"},
	{"defaultdomain", "defaultdomain", "Default domain name is ", ""},
	{"defaulthost", "defaulthost", "Default host name is ", ""},
	{"doublebouncehost", "doublebouncehost", "2B recipient host: ", ""},
	{"doublebounceto", "postmaster", "2B recipient user: ", ""},
	{"envnoathost", "envnoathost", "Presumed domain name is ", ""},
	{"helohost", "helohost", "SMTP client HELO host name is ", ""},
	{"idhost", "idhost", "Message-ID host name is ", ""},
	{"localiphost", "localiphost", "Local IP address becomes ", ""},
	{"locals", "Messages for me are delivered locally.", "Messages for ", " are delivered locally."},
	{"me", "undefined! Uh-oh", "My name is ", ""},
	{"percenthack", "The percent hack is not allowed.", "The percent hack is allowed for user%host@", "."},
	{"plusdomain", "plusdomain", "Plus domain name is ", ""},
	{"qmqpservers", "No QMQP servers.", "QMQP server: ", "."},
	{"queuelifetime", "604800", "Message lifetime in the queue is ", " seconds"},
	{"rcpthosts", "", "", ""},
	{"smtpgreeting", "smtpgreeting", "SMTP greeting: 220 ", ""},
	{"smtproutes", "No artificial SMTP routes.", "SMTP route: ", ""},
	{"timeoutconnect", "60", "SMTP client connection timeout is ", " seconds"},
	{"timeoutremote", "1200", "SMTP client data timeout is ", " seconds"},
	{"timeoutsmtpd", "1200", "SMTP server data timeout is ", " seconds"},
	{"virtualdomains", "No virtual domains.", "Virtual domain: ", ""},
}

// ShowCtl writes qmail-showctl's report on the qmail home: the
// compile-time settings, then every control file netqmail knows with its
// value or default, then the files of control.Table netqmail does not
// know (Debian patches, Life with qmail) that exist, then any other file
// in control/. ids are the qmail users, nil when they do not exist. The
// error is set when control/ cannot be read (qmail-showctl exits 111).
func ShowCtl(w io.Writer, home string, ids *Ids) error {
	out := bufio.NewWriter(w)
	defer out.Flush()
	fmt.Fprintf(out, "qmail home directory: %s.\n", home)
	fmt.Fprintf(out, "user-ext delimiter: %s.\n", UserExtDelimiter)
	fmt.Fprintf(out, "paternalism (in decimal): %d.\n", Paternalism)
	fmt.Fprintf(out, "silent concurrency limit: %d.\n", ConcurrencyLimit)
	fmt.Fprintf(out, "subdirectory split: %d.\n", queue.Split)
	if ids != nil {
		// conf-users order: alias, qmaild, qmaill, root, qmailp, qmailq,
		// qmailr, qmails; conf-groups: nofiles, qmail.
		fmt.Fprintf(out, "user ids: %d, %d, %d, 0, %d, %d, %d, %d.\n",
			ids.Alias, ids.Qmaild, ids.Qmaill, ids.Qmailp, ids.Qmailq, ids.Qmailr, ids.Qmails)
		fmt.Fprintf(out, "group ids: %d, %d.\n", ids.Nofiles, ids.Qmail)
	} else {
		out.WriteString("user ids: none (the qmail users do not exist; an unprivileged home).\n")
		out.WriteString("group ids: none.\n")
	}
	dir := filepath.Join(home, "control")
	des, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(out, "Oops! Unable to read %s.\n", dir)
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	ctl, err := control.Open(home)
	if err != nil {
		out.WriteString("Oops! Trouble reading control/me.")
		return err
	}
	s := &showctl{out: out, ctl: ctl}
	for _, spec := range qmailShowOrder {
		switch spec.name {
		case "rcpthosts":
			s.rcpthosts()
		default:
			s.show(spec)
		}
	}
	known := map[string]bool{"morercpthosts": true, "morercpthosts.cdb": true}
	for _, spec := range qmailShowOrder {
		known[spec.name] = true
	}
	present := map[string]bool{}
	for _, de := range des {
		present[de.Name()] = true
	}
	for _, spec := range control.Table {
		if known[spec.Name] {
			continue
		}
		known[spec.Name] = true
		if present[spec.Name] {
			s.extra(spec)
		}
	}
	names := make([]string, 0, len(des))
	for _, de := range des {
		if !known[de.Name()] {
			names = append(names, de.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(out, "\n%s: I have no idea what this file does.\n", safe(name))
	}
	return out.Flush()
}

type showctl struct {
	out *bufio.Writer
	ctl *control.Files
}

// show prints one file by its kind in control.Table.
func (s *showctl) show(spec showSpec) {
	ts, _ := control.Lookup(spec.name)
	switch ts.Kind {
	case control.KindInt:
		s.number(spec)
	case control.KindList, control.KindKeyValue:
		s.list(spec)
	default:
		s.line(spec, ts.UseMe)
	}
}

func (s *showctl) head(name string) {
	fmt.Fprintf(s.out, "\n%s: ", name)
}

func (s *showctl) number(spec showSpec) {
	s.head(spec.name)
	v, ok, err := s.ctl.Line(spec.name)
	if err != nil {
		s.out.WriteString("Oops! Trouble reading this file.\n")
		return
	}
	n, numeric := control.ScanUlong(v)
	if !ok || !numeric {
		fmt.Fprintf(s.out, "(Default.) %s%s%s.\n", spec.pre, spec.def, spec.post)
		return
	}
	fmt.Fprintf(s.out, "%s%d%s.\n", spec.pre, n, spec.post)
}

func (s *showctl) line(spec showSpec, useMe bool) {
	s.head(spec.name)
	v, ok, err := s.ctl.Line(spec.name)
	if err != nil {
		s.out.WriteString("Oops! Trouble reading this file.\n")
		return
	}
	if !ok {
		s.out.WriteString("(Default.) ")
		v = spec.def
		if me, meOK := s.ctl.Me(); useMe && meOK {
			v = me
		}
	}
	fmt.Fprintf(s.out, "%s%s.\n", spec.pre, safe(v))
}

// list prints a list file; it reports whether the file exists (or -1 as
// an error, which counts as existing for rcpthosts' sake, like qmail).
func (s *showctl) list(spec showSpec) (exists bool) {
	s.head(spec.name)
	lines, ok, err := s.ctl.List(spec.name)
	if err != nil {
		s.out.WriteString("Oops! Trouble reading this file.\n")
		return true
	}
	if !ok {
		fmt.Fprintf(s.out, "(Default.) %s\n", spec.def)
		return false
	}
	s.out.WriteString("\n")
	for _, l := range lines {
		fmt.Fprintf(s.out, "%s%s%s\n", spec.pre, safe(l), spec.post)
	}
	return true
}

func (s *showctl) rcpthosts() {
	to := "SMTP clients may send messages to recipients at "
	if s.list(showSpec{"rcpthosts", "SMTP clients may send messages to any recipient.", to, "."}) {
		s.list(showSpec{"morercpthosts", "No effect.", to, "."})
	} else {
		s.list(showSpec{"morercpthosts", "No rcpthosts; morercpthosts is irrelevant.", "No rcpthosts; doesn't matter that morercpthosts has ", "."})
	}
	s.out.WriteString("\nmorercpthosts.cdb: ")
	src, srcErr := os.Stat(s.ctl.Path("morercpthosts"))
	cdb, cdbErr := os.Stat(s.ctl.Path("morercpthosts.cdb"))
	switch {
	case srcErr != nil && cdbErr != nil:
		s.out.WriteString("(Default.) No effect.\n")
	case srcErr != nil:
		s.out.WriteString("Oops! morercpthosts.cdb exists but morercpthosts doesn't.\n")
	case cdbErr != nil:
		s.out.WriteString("Oops! morercpthosts exists but morercpthosts.cdb doesn't.\n")
	case src.ModTime().Unix() > cdb.ModTime().Unix():
		s.out.WriteString("Oops! morercpthosts.cdb is older than morercpthosts.\n")
	default:
		s.out.WriteString("Modified recently enough; hopefully up to date.\n")
	}
}

// extra describes a file netqmail's qmail-showctl does not know, from its
// control.Table entry.
func (s *showctl) extra(spec control.Spec) {
	s.head(spec.Name)
	origin := "Life with qmail convention"
	if spec.Patch != "" {
		origin = "Debian patch " + spec.Patch
	}
	fmt.Fprintf(s.out, "(%s) %s.\n", origin, safe(spec.Doc))
	switch spec.Kind {
	case control.KindPEM:
		if _, err := os.Stat(s.ctl.Path(spec.Name)); err != nil {
			s.out.WriteString("Oops! Trouble reading this file.\n")
		} else {
			s.out.WriteString("Present.\n")
		}
	case control.KindLine, control.KindInt:
		v, _, err := s.ctl.Line(spec.Name)
		if err != nil {
			s.out.WriteString("Oops! Trouble reading this file.\n")
			return
		}
		fmt.Fprintf(s.out, "Value: %s.\n", safe(v))
	default:
		lines, _, err := s.ctl.List(spec.Name)
		if err != nil {
			s.out.WriteString("Oops! Trouble reading this file.\n")
			return
		}
		for _, l := range lines {
			if spec.Name == "authsenders" {
				l = hidePassword(l)
			}
			fmt.Fprintf(s.out, "Line: %s\n", safe(l))
		}
	}
}

// hidePassword blanks the password of a Debian "route|user|password"
// line: qmail-showctl's output is meant to be pasted into mails.
func hidePassword(line string) string {
	route, rest, ok := strings.Cut(line, "|")
	if !ok {
		return line
	}
	user, _, ok := strings.Cut(rest, "|")
	if !ok {
		return line
	}
	return route + "|" + user + "|(hidden)"
}

// safe replaces unprintable bytes by '?', as qmail-showctl's safeput.
func safe(s string) string {
	return string(appendPrintable(nil, s, '?'))
}
