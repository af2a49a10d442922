package spawn

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
)

// Remote is qmail-rspawn's channel: it runs qmail-remote (or
// $QMAILREMOTE, patch 0011) with exactly one recipient.
type Remote struct {
	Program string // resolved qmail-remote path; see RemoteProgram
}

// RemoteProgram is the program qmail-rspawn runs: $QMAILREMOTE when set
// and non-empty (relative names are taken relative to the qmail home),
// else home/bin/qmail-remote.
func RemoteProgram(home, env string) string {
	p := env
	if p == "" {
		p = filepath.Join("bin", "qmail-remote")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(home, p)
	}
	return p
}

// remoteOutputLimit bounds qmail-remote's output; qmail-send keeps at
// most 10000 bytes of a report anyway.
const remoteOutputLimit = 64 << 10

// OutputLimit implements Channel.
func (*Remote) OutputLimit() int { return remoteOutputLimit }

// Command prepares "qmail-remote host sender recipient".
func (r *Remote) Command(req Request, at int, _ *os.File) (*exec.Cmd, string) {
	cmd := exec.Command(r.Program, req.Recipient[at+1:], req.Sender, req.Recipient)
	cmd.Args[0] = "qmail-remote"
	return cmd, ""
}

// Report implements Channel with qmail-rspawn's folding.
func (*Remote) Report(c Child) string {
	if c.Crashed {
		return "Zqmail-remote crashed.\n"
	}
	switch c.ExitCode {
	case 0:
	case 111, -111:
		return "ZUnable to run qmail-remote.\n"
	default:
		return "DUnable to run qmail-remote.\n"
	}
	return FoldRemote(c.Output)
}

// FoldRemote folds qmail-remote's output (recipient reports r/h/s, then a
// message report K/Z/D, each NUL-terminated) into one spawner report, as
// qmail-rspawn does: the letter comes from the message report unless the
// first recipient report was s (Z) or h (D); the text is the first
// report's, followed by the message report's when the message outcome is
// not milder than the recipient's.
func FoldRemote(s []byte) string {
	if len(s) == 0 {
		return "Zqmail-remote produced no output.\n"
	}
	const (
		fail     = -1
		deferral = 0
		ok       = 1
	)
	result := fail
scan:
	for j := 0; j < len(s); {
		k := bytes.IndexByte(s[j:], 0)
		if k < 0 {
			break
		}
		switch s[j] {
		case 'K':
			result = ok
			break scan
		case 'Z':
			result = deferral
			break scan
		case 'D':
			break scan
		}
		j += k + 1
	}
	folded := result
	switch s[0] {
	case 's':
		folded = deferral
	case 'h':
		folded = fail
	}
	var out []byte
	switch folded {
	case ok:
		out = append(out, 'K')
	case deferral:
		out = append(out, 'Z')
	default:
		out = append(out, 'D')
	}
	first := bytes.IndexByte(s[1:], 0) + 1
	if first == 0 {
		// No complete report: qmail prints the letter alone.
		return string(out)
	}
	out = append(out, cString(s[1:first+1])...)
	k := first + 1
	if result <= folded && k < len(s) {
		switch s[k] {
		case 'Z', 'D', 'K':
			out = append(out, cString(s[k+1:])...)
		}
	}
	return string(out)
}

// cString is the text up to the first NUL, as C's puts would print it.
func cString(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// CleanTCPTO zeroes qmail-remote's timeout table at startup, as
// qmail-rspawn does: a restart forgets past timeouts. Errors are ignored,
// as in qmail: the table is only an optimisation.
func CleanTCPTO(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteAt(make([]byte, 1024), 0)
}
