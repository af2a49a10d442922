// Package bugexit ends the process with exit code 81, qmail's "internal
// bug", as soon as one of a few signals arrives: what qmail-queue's
// sig_bugcatch does for SIGILL, SIGABRT, SIGFPE, SIGBUS and SIGSYS sent
// to it. (qmail catches SIGSEGV as well; Go needs its own handler there,
// which turns a nil dereference into a panic that the program recovers.)
//
// os/signal can do it, but its first Notify starts a goroutine locked to
// a thread of its own, the runtime's template thread and a goroutine
// blocked receiving signals: measured, 0.13 to 0.29 ms of CPU, 7 to 13%
// of a whole qmail-queue run, which happens once per message. On
// linux/amd64 Catch installs a handler of its own instead, a few
// instructions that call exit_group(81), and no thread waits for
// signals. Elsewhere it uses os/signal.
package bugexit

import (
	"os"
	"os/signal"
	"syscall"
)

// Code is the exit status after a caught signal: qmail's "internal bug"
// (queue.ExitBug), which callers report as "qq internal bug (#4.3.0)".
const Code = 81

// catchNotify is Catch through os/signal: a goroutine waits for the
// signals and exits. Deferred functions of other goroutines do not run.
func catchNotify(sigs []syscall.Signal) {
	list := make([]os.Signal, len(sigs))
	for i, s := range sigs {
		list[i] = s
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, list...)
	go func() {
		<-c
		os.Exit(Code)
	}()
}
