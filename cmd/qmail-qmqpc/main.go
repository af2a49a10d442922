// Command qmail-qmqpc hands a message to a QMQP server (qmail-qmqpc(8)).
// It reads the message on fd 0 and the envelope on fd 1 exactly like
// qmail-queue, so a null client sets QMAILQUEUE=bin/qmail-qmqpc. The
// servers are the lines of control/qmqpservers, tried in order. Exit
// codes are qmail-queue's; see docs/qmtp.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/qmtp"
)

func main() {
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run())
}

func run() int {
	home := control.Home()
	if err := os.Chdir(home); err != nil {
		return fail(qmtp.ExitNoHome, err)
	}
	files, err := control.Open(home)
	if err != nil {
		return fail(qmtp.ExitNoServers, err)
	}
	lines, ok, err := files.List("qmqpservers")
	if err != nil || !ok {
		return fail(qmtp.ExitNoServers, fmt.Errorf("control/qmqpservers: missing or unreadable: %v", err))
	}
	msg, err := qmtp.SpoolMessage(os.Stdin, "")
	if err != nil {
		return fail(qmtp.ExitReadFailed, err)
	}
	sender, recipients, err := qmtp.ReadEnvelope(os.NewFile(1, "envelope"))
	if err != nil {
		return fail(qmtp.ExitBadEnvelope, err)
	}
	client := &qmtp.Client{
		Servers:        qmtp.ParseServers(lines),
		ConnectTimeout: 10 * time.Second,
		IOTimeout:      60 * time.Second,
	}
	code, err := client.Send(msg, sender, recipients)
	if err != nil {
		fmt.Fprintf(os.Stderr, "qmail-qmqpc: %v\n", err)
	}
	return code
}

// fail reports err and returns its exit code: the one it carries, if
// any, else code.
func fail(code int, err error) int {
	var ee *qmtp.ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	fmt.Fprintf(os.Stderr, "qmail-qmqpc: %v\n", err)
	return code
}
