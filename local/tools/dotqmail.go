package tools

import (
	"io"
	"strconv"

	"github.com/goqmail/goqmail/local"
)

// Forward is forward(1): queue the message, $DTLINE first, to the
// addresses given, with $NEWSENDER as envelope sender.
func Forward(args []string, p IO) int {
	const fatal = "forward: fatal: "
	sender, ok := p.Getenv("NEWSENDER")
	if !ok {
		return p.die(100, fatal, "NEWSENDER not set")
	}
	dtline, ok := p.Getenv("DTLINE")
	if !ok {
		return p.die(100, fatal, "DTLINE not set")
	}
	qp, code, text := queueCopy(p.QmailHome, dtline, p.Stdin, sender, args)
	if code != 0 {
		return p.die(code, fatal, text)
	}
	return p.die(0, "forward: qp ", strconv.Itoa(qp))
}

// Condredirect is condredirect(1): run program; if it exits 0, forward
// the message to newaddress (sender $SENDER, $DTLINE first) and exit 99
// so qmail-local stops there. 111 from the program is a temporary
// failure; any other exit lets the delivery go on.
func Condredirect(args []string, p IO) int {
	const fatal = "condredirect: fatal: "
	if len(args) < 2 {
		return p.die(100, "condredirect: usage: condredirect newaddress program [ arg ... ]")
	}
	res, err := p.runChild(args[1:])
	if code, done := judgeChild(p, fatal, res, err); done {
		return code
	}
	if res.code != 0 {
		return 0
	}
	if _, err := p.Stdin.Seek(0, io.SeekStart); err != nil {
		return p.die(111, fatal, "unable to rewind: ", local.ErrText(err))
	}
	sender, ok := p.Getenv("SENDER")
	if !ok {
		return p.die(100, fatal, "SENDER not set")
	}
	dtline, ok := p.Getenv("DTLINE")
	if !ok {
		return p.die(100, fatal, "DTLINE not set")
	}
	qp, code, text := queueCopy(p.QmailHome, dtline, p.Stdin, sender, args[:1])
	if code != 0 {
		return p.die(code, fatal, text)
	}
	return p.die(99, "condredirect: qp ", strconv.Itoa(qp))
}

// judgeChild handles the outcomes common to condredirect, bouncesaying
// and except: a failed wait, a crash and exit 111 stop with a temporary
// failure (done is true).
func judgeChild(p IO, fatal string, res childResult, err error) (code int, done bool) {
	switch {
	case err != nil:
		return p.die(111, fatal, "wait failed"), true
	case res.crashed:
		return p.die(111, fatal, "child crashed"), true
	case res.code == 111:
		return p.die(111, fatal, "temporary child error"), true
	}
	return 0, false
}

// Bouncesaying is bouncesaying(1): bounce with the given text, or, with
// a program, bounce only if the program exits 0.
func Bouncesaying(args []string, p IO) int {
	const fatal = "bouncesaying: fatal: "
	if len(args) < 1 {
		return p.die(100, "bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]")
	}
	if len(args) > 1 {
		res, err := p.runChild(args[1:])
		if code, done := judgeChild(p, fatal, res, err); done {
			return code
		}
		if res.code != 0 {
			return 0
		}
	}
	return p.die(100, args[0])
}

// Except is except(1): run program and reverse its verdict: 0 becomes a
// hard failure (100), 111 stays temporary, anything else becomes 0.
func Except(args []string, p IO) int {
	const fatal = "except: fatal: "
	if len(args) < 1 {
		return p.die(100, "except: usage: except program [ arg ... ]")
	}
	res, err := p.runChild(args)
	if code, done := judgeChild(p, fatal, res, err); done {
		return code
	}
	if res.code == 0 {
		return 100
	}
	return 0
}
