package smtpd

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// maxCheckReply bounds what is kept of the RCPTCHECK program's fd 4.
const maxCheckReply = 512

// rcptCheck runs the $RCPTCHECK program (patch 0009) for a recipient of a
// client that may not relay, with SENDER and RECIPIENT in its environment.
// Exit 100 refuses the recipient; 111 and 120 (or a crash) end the session
// with 421; any other exit accepts. Without RCPTCHECK every recipient is
// accepted.
//
// As in the jms1 and sagredo variants, the program may write its own
// reply line to fd 4; it replaces the standard text of a refusal (exit
// 100: a 4xx or 5xx line; exit 111: a 4xx line) when it is a valid SMTP
// reply (see customReply). It never changes the outcome.
func (s *Session) rcptCheck(addr string) (bool, error) {
	prog := s.cfg.Env.RcptCheck
	if prog == "" {
		return true, nil
	}
	replyR, replyW, err := os.Pipe()
	if err != nil {
		s.log.Event("Unable to fork: quitting")
		s.reply("421 unable to fork (#4.3.0)")
		return false, exitSession{1}
	}
	defer replyR.Close()
	// execv, not execvp: the variable names a path.
	cmd := &exec.Cmd{Path: prog, Args: []string{prog}}
	cmd.Env = append(s.childEnv(), "SENDER="+s.mailFrom, "RECIPIENT="+addr)
	cmd.Stderr = os.Stderr
	// fd 3 stays closed; fd 4 is the reply pipe.
	cmd.ExtraFiles = []*os.File{nil, replyW}
	replies := make(chan string, 1)
	go func() { replies <- readCheckReply(replyR) }()
	code := 120
	err = cmd.Run()
	replyW.Close()
	var ee *exec.ExitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 120
		} else {
			code = ee.ExitCode()
		}
	}
	// A background child of the program may still hold fd 4: wait for
	// the reply only briefly once the program itself has exited.
	replyR.SetReadDeadline(time.Now().Add(time.Second))
	custom := <-replies
	switch code {
	case 100:
		s.log.Event("Recipient could not be externally validated")
		if line, ok := customReply(custom, "45"); ok {
			s.reply(line)
		} else {
			s.reply("553 sorry, no mailbox here by that name. (#5.1.1)")
		}
		return false, nil
	case 111:
		s.log.Event("Unable to verify recipient: quitting")
		if line, ok := customReply(custom, "4"); ok {
			s.reply(line)
		} else {
			s.reply("421 unable to verify recipient (#4.3.0)")
		}
		return false, exitSession{1}
	case 120:
		s.log.Event("Unable to execute recipient check: quitting")
		s.reply("421 unable to execute recipient check (#4.3.0)")
		return false, exitSession{1}
	}
	return true, nil
}

// readCheckReply keeps the first maxCheckReply bytes written to fd 4 and
// drains the rest, so that a talkative program never blocks on the pipe.
func readCheckReply(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxCheckReply))
	io.Copy(io.Discard, r)
	return string(b)
}

// customReply validates the reply a recipient check wrote: its first line
// (CR LF or LF ended, or unended) must be three digits, the first one of
// firstDigits, then a space or the end, then printable ASCII only. The
// line is returned without its line end.
func customReply(text, firstDigits string) (string, bool) {
	line, _, _ := strings.Cut(text, "\n")
	line = strings.TrimSuffix(line, "\r")
	if len(line) < 3 || !strings.ContainsRune(firstDigits, rune(line[0])) {
		return "", false
	}
	for i := 1; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return "", false
		}
	}
	if len(line) > 3 && line[3] != ' ' {
		return "", false
	}
	for i := 0; i < len(line); i++ {
		if line[i] < ' ' || line[i] > '~' {
			return "", false
		}
	}
	return line, true
}
