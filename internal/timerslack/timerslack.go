// Package timerslack gives goqmail's long-running programs a timer slack
// of a millisecond (docs/performance.md, "Timer slack").
//
// While any goroutine is in a system call, the Go runtime's monitor
// thread (sysmon) wakes every 20 microseconds, and each system call made
// after an idle moment wakes it from its deep sleep. A mail server's
// daemons spend their time in short bursts of system calls around
// fsyncs: with Linux's default slack of 50 microseconds, the monitor
// alone was an eighth of goqmail's CPU under load. With a slack of a
// millisecond the kernel lets those sleeps run longer and coalesces
// their wakeups; timers fire up to a millisecond late, which nothing in
// a mail server notices.
//
// The monitor thread is started before main, and a thread cannot change
// another thread's slack without CAP_SYS_NICE. The slack is inherited by
// new threads and processes and kept across execve(2), so Ensure sets it
// on the calling thread and executes the program again: every thread of
// the new image, the runtime's own included, has it, and so do the
// programs it starts, which then need no new execution of their own.
package timerslack

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Slack is the timer slack of goqmail's long-running programs.
const Slack = time.Millisecond

// tried marks the one execution Ensure makes, so that a kernel that
// accepts the slack but loses it across execve does not make a loop. It
// is removed from the environment at once, before any program is run.
const tried = "GOQMAIL_TIMERSLACK_SET"

// Ensure returns when the calling thread's slack is at least Slack (the
// program was started by one of goqmail's daemons, or this is the
// second execution) or cannot be made so (the program's file cannot be
// found, a real-time scheduling policy, which ignores the slack). Otherwise it sets the
// slack and executes the same program again with the same arguments,
// environment and descriptors, and does not return. Call it first in
// main, before the program opens anything or starts goroutines.
func Ensure() {
	if _, ok := os.LookupEnv(tried); ok {
		os.Unsetenv(tried)
		return
	}
	// The slack and the execve must happen on one thread: the new
	// image's first thread is the one that called execve.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if Current() >= Slack {
		return
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(Slack), 0, 0, 0); err != nil || Current() < Slack {
		return
	}
	// The program's own path, not /proc/self/exe: the kernel names a
	// process after the file it executes, and ps, pgrep and the
	// supervisors' scripts must still see qmail-send, not "exe".
	exe, err := os.Executable()
	if err != nil {
		return
	}
	// On failure the program goes on with the slack on this thread only.
	syscall.Exec(exe, os.Args, append(os.Environ(), tried+"=1"))
}

// Current is the calling thread's timer slack.
func Current() time.Duration {
	n, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0
	}
	return time.Duration(n)
}

// Start starts cmd from a thread with the slack, so that the program
// inherits it: a qmail-queue started for each message then runs its
// fsyncs with a quiet monitor thread, without executing itself again.
// The thread keeps the slack afterwards.
func Start(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if Current() < Slack {
		unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(Slack), 0, 0, 0)
	}
	return cmd.Start()
}
