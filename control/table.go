package control

import "fmt"

// Kind is how a control file is read.
type Kind int

const (
	// KindLine is a single-value file: its first line (control_readline).
	KindLine Kind = iota
	// KindInt is a number: the leading digits of the first line
	// (control_readint).
	KindInt
	// KindList is a list: every non-empty line not starting with "#"
	// (control_readfile).
	KindList
	// KindKeyValue is a list of "key:value" lines, split at the first
	// colon with SplitKeyValue.
	KindKeyValue
	// KindPEM is a certificate or key file read whole by crypto code,
	// not by the control-file rules.
	KindPEM
)

func (k Kind) String() string {
	switch k {
	case KindLine:
		return "line"
	case KindInt:
		return "number"
	case KindList:
		return "list"
	case KindKeyValue:
		return "key:value list"
	case KindPEM:
		return "PEM file"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Spec describes one control file: how it is read, what a missing file
// means and who reads it. The accessors String, Number and Strings apply
// it, so programs need not repeat qmail's defaults.
type Spec struct {
	Name string
	Kind Kind
	// UseMe: a missing file takes the contents of control/me, if that
	// exists (control_rldef's and control_readfile's flagme).
	UseMe bool
	// Default is the value of a missing file (after the "me" fallback).
	// HasDefault false means a missing file has no value, which for
	// most files means the feature is off (rcpthosts: open relay).
	Default    string
	HasDefault bool
	Readers    []string // the programs that read it
	Patch      string   // the Debian patch adding it, "" for netqmail
	Doc        string   // one line for qmail-showctl
}

// Table lists every control file of netqmail 1.06 and of the Debian patch
// set, with the defaults qmail's programs apply.
var Table = []Spec{
	{Name: "me", Kind: KindLine, Readers: []string{"all"}, Doc: "fully-qualified name of this host, the default of many files"},
	{Name: "badmailfrom", Kind: KindList, Readers: []string{"qmail-smtpd"}, Doc: "envelope senders (address or @domain) refused by SMTP"},
	{Name: "bouncefrom", Kind: KindLine, Default: "MAILER-DAEMON", HasDefault: true, Readers: []string{"qmail-send"}, Doc: "local part of the sender of bounces"},
	{Name: "bouncehost", Kind: KindLine, UseMe: true, Default: "bouncehost", HasDefault: true, Readers: []string{"qmail-send"}, Doc: "host part of the sender of bounces"},
	{Name: "concurrencylocal", Kind: KindInt, Default: "10", HasDefault: true, Readers: []string{"qmail-send"}, Doc: "simultaneous local deliveries (0 holds them; at most 120)"},
	{Name: "concurrencyremote", Kind: KindInt, Default: "20", HasDefault: true, Readers: []string{"qmail-send"}, Doc: "simultaneous remote deliveries (0 holds them; at most 120)"},
	{Name: "databytes", Kind: KindInt, Default: "0", HasDefault: true, Readers: []string{"qmail-smtpd", "qmail-qmtpd"}, Doc: "largest message accepted, 0 for no limit; $DATABYTES overrides"},
	{Name: "defaultdomain", Kind: KindLine, UseMe: true, Default: "defaultdomain", HasDefault: true, Readers: []string{"qmail-inject"}, Doc: "appended to host names without a dot; $QMAILDEFAULTDOMAIN overrides"},
	{Name: "defaulthost", Kind: KindLine, UseMe: true, Default: "defaulthost", HasDefault: true, Readers: []string{"qmail-inject"}, Doc: "host of addresses without one; $QMAILDEFAULTHOST overrides"},
	{Name: "doublebouncehost", Kind: KindLine, UseMe: true, Default: "doublebouncehost", HasDefault: true, Readers: []string{"qmail-send"}, Doc: "host part of the double-bounce recipient"},
	{Name: "doublebounceto", Kind: KindLine, Default: "postmaster", HasDefault: true, Readers: []string{"qmail-send"}, Doc: "local part of the double-bounce recipient"},
	{Name: "envnoathost", Kind: KindLine, UseMe: true, Default: "envnoathost", HasDefault: true, Readers: []string{"qmail-send"}, Doc: "host of envelope recipients without @"},
	{Name: "helohost", Kind: KindLine, UseMe: true, Readers: []string{"qmail-remote"}, Doc: "name given in HELO/EHLO; qmail-remote refuses to run without it or me"},
	{Name: "idhost", Kind: KindLine, UseMe: true, Default: "idhost", HasDefault: true, Readers: []string{"qmail-inject"}, Doc: "host part of Message-IDs; $QMAILIDHOST overrides"},
	{Name: "localiphost", Kind: KindLine, UseMe: true, Readers: []string{"qmail-smtpd"}, Doc: "replaces a local [IP] address literal"},
	{Name: "locals", Kind: KindList, UseMe: true, Readers: []string{"qmail-send"}, Doc: "domains delivered locally; qmail-send refuses to run without it or me"},
	{Name: "morercpthosts", Kind: KindList, Readers: []string{"qmail-newmrh"}, Doc: "more rcpthosts, compiled by qmail-newmrh into morercpthosts.cdb"},
	{Name: "percenthack", Kind: KindList, Readers: []string{"qmail-send"}, Doc: "domains where user%host@domain is rewritten to user@host"},
	{Name: "plusdomain", Kind: KindLine, UseMe: true, Default: "plusdomain", HasDefault: true, Readers: []string{"qmail-inject"}, Doc: "replaces a trailing + in host names; $QMAILPLUSDOMAIN overrides"},
	{Name: "qmqpservers", Kind: KindList, Readers: []string{"qmail-qmqpc"}, Doc: "IP addresses of QMQP servers, tried in order"},
	{Name: "queuelifetime", Kind: KindInt, Default: "604800", HasDefault: true, Readers: []string{"qmail-send"}, Doc: "seconds a message may stay in the queue"},
	{Name: "rcpthosts", Kind: KindList, Readers: []string{"qmail-smtpd", "qmail-qmtpd"}, Doc: "domains accepted from unauthorized clients; missing means an open relay"},
	{Name: "smtpgreeting", Kind: KindLine, UseMe: true, Readers: []string{"qmail-smtpd"}, Doc: "SMTP greeting; qmail-smtpd refuses to run without it or me"},
	{Name: "smtproutes", Kind: KindKeyValue, Readers: []string{"qmail-remote"}, Doc: "artificial routes domain:relay[:port], Debian: |user|password"},
	{Name: "dnsservers", Kind: KindList, Readers: []string{"qmail-remote"}, Doc: "goqmail: DNS servers to ask instead of /etc/resolv.conf's, IP or IP:port ([IPv6]:port) a line"},
	{Name: "ipv6", Kind: KindInt, Default: "1", HasDefault: true, Readers: []string{"qmail-remote"}, Doc: "goqmail: 0 turns off IPv6 delivery (AAAA records, IPv6 literals and relays)"},
	{Name: "timeoutconnect", Kind: KindInt, Default: "60", HasDefault: true, Readers: []string{"qmail-remote"}, Doc: "seconds to wait for an SMTP connection"},
	{Name: "timeoutremote", Kind: KindInt, Default: "1200", HasDefault: true, Readers: []string{"qmail-remote"}, Doc: "seconds to wait for the remote SMTP server"},
	{Name: "timeoutsmtpd", Kind: KindInt, Default: "1200", HasDefault: true, Readers: []string{"qmail-smtpd"}, Doc: "seconds to wait for the SMTP client (values below 1 mean 1)"},
	{Name: "virtualdomains", Kind: KindKeyValue, Readers: []string{"qmail-send"}, Doc: "virtual users and domains, address:prepend"},

	// Conventions of Life with qmail, read by scripts, not by qmail.
	{Name: "defaultdelivery", Kind: KindLine, Readers: []string{"rc"}, Doc: "default delivery instructions for qmail-start (read by /var/qmail/rc)"},
	{Name: "concurrencyincoming", Kind: KindInt, Readers: []string{"qmail-smtpd run script"}, Doc: "tcpserver -c limit for incoming SMTP (read by the run script)"},

	// Debian patch set.
	{Name: "authsenders", Kind: KindKeyValue, Readers: []string{"qmail-remote"}, Patch: "0008", Doc: "sender:relay[:port]|user|password routes for outgoing SMTP AUTH"},
	{Name: "servercert.pem", Kind: KindPEM, Readers: []string{"qmail-smtpd"}, Patch: "0010", Doc: "certificate and key for STARTTLS; its presence enables STARTTLS"},
	{Name: "clientca.pem", Kind: KindPEM, Readers: []string{"qmail-smtpd"}, Patch: "0010", Doc: "CAs verifying client certificates"},
	{Name: "clientcrl.pem", Kind: KindPEM, Readers: []string{"qmail-smtpd"}, Patch: "0010", Doc: "CRLs for clientca.pem"},
	{Name: "tlsclients", Kind: KindList, Readers: []string{"qmail-smtpd"}, Patch: "0010", Doc: "certificate e-mail addresses allowed to relay"},
	{Name: "tlsserverciphers", Kind: KindList, Default: "DEFAULT", HasDefault: true, Readers: []string{"qmail-smtpd"}, Patch: "0010", Doc: "server cipher list, lines joined with ':'; $TLSCIPHERS overrides"},
	{Name: "tlsclientciphers", Kind: KindList, Default: "DEFAULT", HasDefault: true, Readers: []string{"qmail-remote"}, Patch: "0010", Doc: "client cipher list, lines joined with ':'"},
	{Name: "clientcert.pem", Kind: KindPEM, Readers: []string{"qmail-remote"}, Patch: "0010", Doc: "client certificate and key presented to servers"},
	{Name: "dh2048.pem", Kind: KindPEM, Readers: []string{"qmail-smtpd"}, Patch: "0010", Doc: "pre-generated DH parameters"},
	{Name: "rsa2048.pem", Kind: KindPEM, Readers: []string{"qmail-smtpd"}, Patch: "0010", Doc: "pre-generated temporary RSA key"},
}

// Lookup returns the Spec of the named control file.
func Lookup(name string) (Spec, bool) {
	for _, s := range Table {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

func (f *Files) spec(name string, kinds ...Kind) (Spec, error) {
	s, ok := Lookup(name)
	if !ok {
		return Spec{}, fmt.Errorf("control/%s: not a known control file", name)
	}
	for _, k := range kinds {
		if s.Kind == k {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("control/%s: a %s, not read this way", name, s.Kind)
}

// String reads a single-line file with its table defaults: the file's
// first line, else control/me for the files that fall back to it, else
// the literal default. ok is false when none applies (helohost,
// smtpgreeting and localiphost without me; files without a default).
func (f *Files) String(name string) (value string, ok bool, err error) {
	s, err := f.spec(name, KindLine)
	if err != nil {
		return "", false, err
	}
	v, ok, err := f.Line(name)
	if err != nil || ok {
		return v, ok, err
	}
	if s.UseMe && f.meOK {
		return f.me, true, nil
	}
	return s.Default, s.HasDefault, nil
}

// Number reads a numeric file with its table default, which also
// applies when the first line does not start with a digit. A file with
// no default reads as 0.
func (f *Files) Number(name string) (int, error) {
	s, err := f.spec(name, KindInt)
	if err != nil {
		return 0, err
	}
	def, _ := ScanUlong(s.Default)
	return f.Int(name, def)
}

// Strings reads a list or key:value file with its table defaults:
// the file's lines, else [me] for locals, else the literal default as a
// one-element list. ok is false when the file is missing and nothing
// applies, which callers must tell from an empty file: a missing
// rcpthosts makes an open relay, an empty one accepts nothing.
func (f *Files) Strings(name string) (lines []string, ok bool, err error) {
	s, err := f.spec(name, KindList, KindKeyValue)
	if err != nil {
		return nil, false, err
	}
	lines, ok, err = f.List(name)
	if err != nil || ok {
		return lines, ok, err
	}
	if s.UseMe && f.meOK {
		return []string{f.me}, true, nil
	}
	if s.HasDefault {
		return []string{s.Default}, true, nil
	}
	return nil, false, nil
}
