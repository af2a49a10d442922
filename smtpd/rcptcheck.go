package smtpd

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// rcptCheck runs the $RCPTCHECK program (patch 0009) for a recipient of a
// client that may not relay, with SENDER and RECIPIENT in its environment.
// Exit 100 refuses the recipient; 111 and 120 (or a crash) end the session
// with 421; any other exit accepts. Without RCPTCHECK every recipient is
// accepted.
func (s *Session) rcptCheck(addr string) (bool, error) {
	prog := s.cfg.Env.RcptCheck
	if prog == "" {
		return true, nil
	}
	// execv, not execvp: the variable names a path.
	cmd := &exec.Cmd{Path: prog, Args: []string{prog}}
	cmd.Env = append(s.childEnv(), "SENDER="+s.mailFrom, "RECIPIENT="+addr)
	cmd.Stderr = os.Stderr
	code := 120
	err := cmd.Run()
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
	switch code {
	case 100:
		return false, nil
	case 111:
		s.log.Event("Unable to verify recipient: quitting")
		s.reply("421 unable to verify recipient (#4.3.0)")
		return false, exitSession{1}
	case 120:
		s.log.Event("Unable to execute recipient check: quitting")
		s.reply("421 unable to execute recipient check (#4.3.0)")
		return false, exitSession{1}
	}
	return true, nil
}
