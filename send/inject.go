package send

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/goqmail/goqmail/queue"
)

// injectBounce queues the bounce message of a message whose bounce/N
// exists (§8.3) and removes bounce/N. It reports false when it must be
// tried again later.
func (s *Sender) injectBounce(m *message) bool {
	bouncePath := s.path("bounce", m.id)
	bounceName := s.relPath("bounce", m.id)
	if _, err := os.Stat(bouncePath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return true
		}
		s.log.line("warning: unable to stat ", bounceName)
		return false
	}
	sender := m.sender
	if strings.HasSuffix(sender, "-@[]") {
		sender = sender[:len(sender)-4] // owner-@host-@[] -> owner-@host
	}
	if sender == "#@[]" {
		s.log.line("triple bounce: discarding ", bounceName)
	} else {
		qq, err := queue.Open(s.cfg.Home)
		if err != nil {
			s.log.line("warning: unable to start qmail-queue, will try later")
			return false
		}
		bounceSender, bounceRecip := "", sender
		if sender == "" {
			bounceSender = "#@[]"
			bounceRecip = s.set.doubleBounceTo + "@" + s.set.doubleBounceHost
		}
		qq.WriteString(BounceHeader(s.now(), s.set.bounceFrom, s.set.bounceHost, sender, bounceRecip))
		copyFile(qq, bouncePath)
		qq.WriteString(BounceSeparator(sender))
		copyFile(qq, s.path("mess", m.id))
		if err := qq.Close(bounceSender, []string{bounceRecip}); err != nil {
			s.log.line("warning: trouble injecting bounce message, will try later")
			return false
		}
		s.log.line("bounce msg ", strconv.FormatUint(m.id, 10), " qp ", strconv.Itoa(qq.Pid()))
	}
	if err := os.Remove(bouncePath); err != nil {
		s.log.line("warning: unable to unlink ", bounceName)
		return false
	}
	return true
}

// copyFile streams a file into the queue client; a failure marks the
// submission failed, so that no truncated bounce is queued.
func copyFile(qq *queue.Client, path string) {
	f, err := os.Open(path)
	if err != nil {
		qq.Fail(err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(qq, f); err != nil {
		qq.Fail(err)
	}
}
