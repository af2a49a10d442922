package bugexit

import (
	"fmt"
	"syscall"
	"unsafe"
)

// sigaction is the kernel's struct sigaction for rt_sigaction on amd64.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const (
	// saOnStack runs the handler on the thread's signal stack, which the
	// Go runtime gives every thread it starts: a goroutine's stack may be
	// too small for the kernel's signal frame.
	saOnStack = 0x08000000
	// saRestorer is mandatory on amd64. The handler never returns, so
	// the restorer is never called; it is the handler again.
	saRestorer = 0x04000000
)

// exitHandler is the signal handler, in assembly: it runs with no
// goroutine of the runtime's and only calls exit_group(Code).
func exitHandler()

// exitHandlerPC returns the address of exitHandler's code.
func exitHandlerPC() uintptr

// Catch makes each signal in sigs end the process at once with Code, as
// qmail's handler does with _exit: no deferred function runs and nothing
// is flushed. A synchronous fault on one of them (a SIGBUS from a bad
// memory access) exits 81 too instead of panicking, again as in qmail.
func Catch(sigs ...syscall.Signal) error {
	act := sigaction{
		handler:  exitHandlerPC(),
		flags:    saOnStack | saRestorer,
		restorer: exitHandlerPC(),
		mask:     ^uint64(0), // nothing else runs while it exits
	}
	for _, sig := range sigs {
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig),
			uintptr(unsafe.Pointer(&act)), 0, unsafe.Sizeof(act.mask), 0, 0)
		if errno != 0 {
			return fmt.Errorf("rt_sigaction %v: %w", sig, errno)
		}
	}
	return nil
}
