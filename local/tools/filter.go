package tools

import (
	"bufio"
	"fmt"
	"github.com/goqmail/goqmail/internal/getopt"
	"io"
	"os"
	"time"

	"github.com/goqmail/goqmail/local"
)

// pipeInto runs argv with a pipe as its stdin, writes prefix and then
// our stdin into it, and returns the child's exit code. It is the common
// part of preline and predate.
func pipeInto(p IO, fatal string, argv []string, prefix string, copyFails bool, startFail func(error) int) int {
	pr, pw, err := os.Pipe()
	if err != nil {
		return p.die(111, fatal, "unable to create pipe: ", local.ErrText(err))
	}
	cmd := p.command(argv)
	cmd.Stdin = pr
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return startFail(startError(err))
	}
	pr.Close()
	w := bufio.NewWriterSize(pw, 64<<10)
	w.WriteString(prefix)
	_, err = io.Copy(w, p.Stdin)
	if err == nil {
		err = w.Flush()
	}
	pw.Close()
	if err != nil && copyFails {
		return p.die(111, fatal, "unable to copy input: ", local.ErrText(err))
	}
	res, err := wait(cmd)
	if err != nil {
		return p.die(111, fatal, "wait failed: ", local.ErrText(err))
	}
	if res.crashed {
		return p.die(111, fatal, "child crashed")
	}
	return res.code
}

// Preline is preline(1): feed a program the message with qmail-local's
// $UFLINE, $RPLINE and $DTLINE in front (-f, -r, -d leave one out; -F,
// -R, -D put it back), for programs that expect an mbox-style message.
func Preline(args []string, p IO) int {
	const fatal = "preline: fatal: "
	usage := func() int { return p.die(100, "preline: usage: preline cmd [ arg ... ]") }
	ufline, ok1 := p.Getenv("UFLINE")
	rpline, ok2 := p.Getenv("RPLINE")
	dtline, ok3 := p.Getenv("DTLINE")
	if !ok1 || !ok2 || !ok3 {
		return usage()
	}
	useUF, useRP, useDT := true, true, true
	g := getopt.New("preline", args, "frdFRD", nil)
	for o := g.Next(); o != getopt.Done; o = g.Next() {
		switch o {
		case 'f', 'F':
			useUF = o == 'F'
		case 'r', 'R':
			useRP = o == 'R'
		case 'd', 'D':
			useDT = o == 'D'
		default:
			return usage()
		}
	}
	argv := g.Rest()
	if len(argv) == 0 {
		return usage()
	}
	prefix := ""
	if useUF {
		prefix += ufline
	}
	if useRP {
		prefix += rpline
	}
	if useDT {
		prefix += dtline
	}
	return pipeInto(p, fatal, argv, prefix, true, func(err error) int {
		code := 100
		if local.IsTemp(err) {
			code = 111
		}
		return p.die(code, fatal, "unable to run ", argv[0], ": ", local.ErrText(err))
	})
}

// Predate is predate(1): feed a program a Date: line for now, in the
// local time zone, followed by our stdin.
func Predate(args []string, p IO) int {
	const fatal = "predate: fatal: "
	if len(args) == 0 {
		return p.die(100, "predate: usage: predate child")
	}
	return pipeInto(p, fatal, args, DateLine(time.Now()), false, func(err error) int {
		return p.die(111, fatal, "unable to run ", args[0], ": ", local.ErrText(err))
	})
}

// DateLine is predate's header line: "Date: 5 Nov 2026 14:03:09 +0100\n"
// (day not padded, offset from UTC rounded to the minute).
func DateLine(t time.Time) string {
	_, off := t.Zone()
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	minutes := (off + 30) / 60
	return fmt.Sprintf("Date: %d %s %d %02d:%02d:%02d %c%02d%02d\n",
		t.Day(), t.Month().String()[:3], t.Year(), t.Hour(), t.Minute(), t.Second(),
		sign, minutes/60, minutes%60)
}
