package admin

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/queue"
)

// Severity of a Finding.
type Severity int

const (
	Info Severity = iota
	Warning
	Error // qmailctl check exits 1
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	}
	return "error"
}

// Finding is one thing qmailctl check reports.
type Finding struct {
	Severity Severity
	Subject  string // the file or setting concerned
	Text     string
}

func (f Finding) String() string {
	return f.Severity.String() + ": " + f.Subject + ": " + f.Text
}

// IPResolver is the lookup Check needs (dns.Resolver).
type IPResolver interface {
	LookupIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// CheckOptions say what Check examines.
type CheckOptions struct {
	Home string
	// Ids are qmail's users when they exist; the owners of a home whose
	// queue belongs to qmailq are then checked against hier.c's.
	Ids      *Ids
	Resolver IPResolver // nil skips the DNS check of control/me
	Now      time.Time
	// CertWarning is how long before expiry servercert.pem is reported.
	CertWarning time.Duration
}

// Check reads the whole configuration of a qmail home and reports what
// would hurt: an open relay, a queue not laid out as qmail's (split,
// modes, owners), control/me missing or not resolving, an unreadable or
// expiring servercert.pem, users/cdb or morercpthosts.cdb older than
// their sources.
func Check(ctx context.Context, o CheckOptions) []Finding {
	c := &checker{o: o}
	if c.o.Now.IsZero() {
		c.o.Now = time.Now()
	}
	if c.o.CertWarning == 0 {
		c.o.CertWarning = 30 * 24 * time.Hour
	}
	ctl, err := control.Open(o.Home)
	if err != nil {
		c.add(Error, "control/me", "%v", err)
		return c.findings
	}
	c.ctl = ctl
	c.controlFiles(ctx)
	c.cdbs()
	c.cert()
	c.queue()
	return c.findings
}

type checker struct {
	o        CheckOptions
	ctl      *control.Files
	findings []Finding
}

func (c *checker) add(s Severity, subject, format string, args ...any) {
	c.findings = append(c.findings, Finding{s, subject, fmt.Sprintf(format, args...)})
}

func (c *checker) controlFiles(ctx context.Context) {
	me, ok := c.ctl.Me()
	switch {
	case !ok:
		c.add(Error, "control/me", "missing: qmail-send and qmail-smtpd need it or their own files (run qmailctl init)")
	case me == "":
		c.add(Error, "control/me", "empty")
	case c.o.Resolver != nil:
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		addrs, err := c.o.Resolver.LookupIP(lctx, me)
		cancel()
		if err != nil {
			c.add(Warning, "control/me", "%s does not resolve (%v): bounces and HELO will name a host nobody can reach", me, err)
		} else if len(addrs) == 0 {
			c.add(Warning, "control/me", "%s has no address", me)
		}
	}
	if _, ok, err := c.ctl.List("rcpthosts"); err != nil {
		c.add(Error, "control/rcpthosts", "%v", err)
	} else if !ok {
		c.add(Error, "control/rcpthosts", "missing: qmail-smtpd accepts mail for any domain from anyone (an open relay)")
	}
	if _, ok, err := c.ctl.List("locals"); err == nil && !ok {
		c.add(Warning, "control/locals", "missing: only control/me is delivered locally")
	}
	if _, ok, _ := c.ctl.Line("defaultdelivery"); !ok {
		c.add(Warning, "control/defaultdelivery", "missing: the qmail-send run script refuses to start")
	}
	for _, spec := range control.Table {
		if spec.Kind == control.KindPEM {
			continue
		}
		if _, err := os.Stat(c.ctl.Path(spec.Name)); err != nil {
			continue
		}
		var err error
		switch spec.Kind {
		case control.KindInt, control.KindLine:
			_, _, err = c.ctl.Line(spec.Name)
		default:
			_, _, err = c.ctl.List(spec.Name)
		}
		if err != nil {
			c.add(Error, "control/"+spec.Name, "unreadable: %v", err)
		}
	}
}

// cdbs reports compiled files older than their sources: qmail reads only
// the cdb, so the edit has not taken effect.
func (c *checker) cdbs() {
	pairs := []struct{ src, cdb, tool string }{
		{filepath.Join(c.o.Home, "users", "assign"), filepath.Join(c.o.Home, "users", "cdb"), "qmail-newu"},
		{c.ctl.Path("morercpthosts"), c.ctl.Path("morercpthosts.cdb"), "qmail-newmrh"},
	}
	for _, p := range pairs {
		rel, _ := filepath.Rel(c.o.Home, p.cdb)
		src, err := os.Stat(p.src)
		if err != nil {
			continue
		}
		cdb, err := os.Stat(p.cdb)
		switch {
		case err != nil:
			c.add(Error, rel, "missing although %s exists: run %s (or qmailctl cdb)", filepath.Base(p.src), p.tool)
		case cdb.ModTime().Before(src.ModTime()):
			c.add(Error, rel, "older than %s: run %s (or qmailctl cdb)", filepath.Base(p.src), p.tool)
		}
	}
}

func (c *checker) cert() {
	p := c.ctl.Path("servercert.pem")
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		c.add(Info, "control/servercert.pem", "missing: STARTTLS is not offered")
		return
	}
	if err != nil {
		c.add(Error, "control/servercert.pem", "unreadable: %v", errorText(err))
		return
	}
	var cert *x509.Certificate
	hasKey := false
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE" && cert == nil:
			if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				c.add(Error, "control/servercert.pem", "bad certificate: %v", err)
				return
			}
		case b.Type == "PRIVATE KEY" || b.Type == "RSA PRIVATE KEY" || b.Type == "EC PRIVATE KEY":
			hasKey = true
		}
	}
	switch {
	case cert == nil:
		c.add(Error, "control/servercert.pem", "no certificate in it: STARTTLS fails")
		return
	case !hasKey:
		c.add(Error, "control/servercert.pem", "no private key in it (qmail wants certificate and key in one file)")
	}
	left := cert.NotAfter.Sub(c.o.Now)
	switch {
	case left <= 0:
		c.add(Error, "control/servercert.pem", "expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	case left < c.o.CertWarning:
		c.add(Warning, "control/servercert.pem", "expires on %s, in %d days", cert.NotAfter.UTC().Format(time.RFC3339), int(left.Hours()/24))
	}
}

func (c *checker) queue() {
	qdir := filepath.Join(c.o.Home, "queue")
	fi, err := os.Stat(qdir)
	if err != nil {
		c.add(Error, "queue", "%s (run qmailctl init)", errorText(err))
		return
	}
	privileged := false
	if c.o.Ids != nil {
		privileged = int(fi.Sys().(*syscall.Stat_t).Uid) == c.o.Ids.Qmailq
		if !privileged {
			c.add(Info, "queue", "not owned by qmailq: an unprivileged home; owners are not checked")
		}
	}
	for _, d := range queue.Layout {
		paths := []string{filepath.Join(qdir, d.Name)}
		if d.Split {
			paths = paths[:0]
			for i := 0; i < queue.Split; i++ {
				paths = append(paths, filepath.Join(qdir, d.Name, strconv.Itoa(i)))
			}
			if _, err := os.Stat(filepath.Join(qdir, d.Name, strconv.Itoa(queue.Split))); err == nil {
				c.add(Error, "queue/"+d.Name, "has a subdirectory %d: the queue was made with another split than %d (use qmail-upq)", queue.Split, queue.Split)
			}
		}
		for _, p := range paths {
			c.checkNode(p, d.Owner, os.ModeDir|d.Mode, privileged)
		}
	}
	c.checkNode(filepath.Join(qdir, "lock", "trigger"), "qmails", os.ModeNamedPipe|0o622, privileged)
	c.checkNode(filepath.Join(qdir, "lock", "sendmutex"), "qmails", 0o600, privileged)
	c.checkNode(filepath.Join(qdir, "lock", "tcpto"), "qmailr", 0o644, privileged)
	if privileged {
		c.checkNode(filepath.Join(c.o.Home, "bin", "qmail-queue"), "qmailq", os.ModeSetuid|0o711, true)
	}
}

func (c *checker) checkNode(path, owner string, mode os.FileMode, checkOwner bool) {
	rel, _ := filepath.Rel(c.o.Home, path)
	fi, err := os.Lstat(path)
	if err != nil {
		c.add(Error, rel, "%s: not qmail's queue layout", errorText(err))
		return
	}
	if fi.Mode() != mode {
		c.add(Error, rel, "mode %v, qmail's is %v", fi.Mode(), mode)
	}
	if !checkOwner {
		return
	}
	want := map[string]int{"qmailq": c.o.Ids.Qmailq, "qmails": c.o.Ids.Qmails, "qmailr": c.o.Ids.Qmailr}[owner]
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != want || int(st.Gid) != c.o.Ids.Qmail {
		c.add(Error, rel, "owned by %d:%d, qmail's is %s:qmail (%d:%d)", st.Uid, st.Gid, owner, want, c.o.Ids.Qmail)
	}
}

// WriteFindings prints the findings, one a line, and a summary; it
// reports whether any is an error.
func WriteFindings(w io.Writer, findings []Finding) (hasError bool) {
	n := map[Severity]int{}
	for _, f := range findings {
		fmt.Fprintln(w, string(appendPrintable(nil, f.String(), '?')))
		n[f.Severity]++
	}
	fmt.Fprintf(w, "%d errors, %d warnings.\n", n[Error], n[Warning])
	return n[Error] > 0
}
