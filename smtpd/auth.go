package smtpd

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"github.com/goqmail/goqmail/internal/ascii"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
)

// authMode is the SMTPAUTH setting of patch 0008.
type authMode struct {
	enabled  bool
	required bool // MAIL needs a successful AUTH first
	login    bool // LOGIN and PLAIN advertised
	cram     bool // CRAM-MD5 advertised; the challenge goes to checkpassword
}

// authMode decodes SMTPAUTH: unset or "-" disables AUTH, "!" requires it,
// "cram" offers only CRAM-MD5, "+cram" adds it to LOGIN and PLAIN, and
// "!cram"/"!+cram" are those two with AUTH required. Any other value,
// the empty one included, offers LOGIN and PLAIN.
func (s *Session) authMode() authMode {
	e := s.cfg.Env
	if !e.HasSMTPAuth || e.SMTPAuth == "-" {
		return authMode{}
	}
	v := e.SMTPAuth
	switch {
	case strings.HasPrefix(v, "!+cram"):
		return authMode{enabled: true, required: true, login: true, cram: true}
	case strings.HasPrefix(v, "!cram"):
		return authMode{enabled: true, required: true, cram: true}
	case strings.HasPrefix(v, "+cram"):
		return authMode{enabled: true, login: true, cram: true}
	case strings.HasPrefix(v, "cram"):
		return authMode{enabled: true, cram: true}
	case v == "!":
		return authMode{enabled: true, required: true, login: true}
	}
	return authMode{enabled: true, login: true}
}

// authReply is an AUTH outcome that has its own reply line.
type authReply struct {
	log, reply string
}

func (e *authReply) Error() string { return e.log }

var (
	errAuthMalformed = &authReply{"auth - malformed input", "501 malformed auth input (#5.5.4)"}
	errAuthCanceled  = &authReply{"auth - exchange cancelled", "501 auth exchange canceled (#5.0.0)"}
	errAuthPipe      = &authReply{"auth - can't open pipe", "454 oops, unable to open pipe and I can't auth (#4.3.0)"}
	errAuthWrite     = &authReply{"auth - can't write to pipe", "454 oops, unable to write pipe and I can't auth (#4.3.0)"}
	errAuthFork      = &authReply{"auth - child won't start", "454 oops, child won't start and I can't auth (#4.3.0)"}
	errAuthChild     = &authReply{"auth - problem with child", "454 oops, problem with child and I can't auth (#4.3.0)"}
	// errAuthFailed: checkpassword said no.
	errAuthFailed = errors.New("authentication failed")
)

func (s *Session) auth(arg string) error {
	mode := s.authMode()
	if !mode.enabled || len(s.cfg.CheckPassword) == 0 {
		s.reply("503 auth not available (#5.3.3)")
		return nil
	}
	if s.seenAuth {
		s.log.Event("auth - already authenticated")
		s.reply("503 you're already authenticated (#5.5.0)")
		return nil
	}
	if s.seenMail {
		s.log.Event("auth - no auth during mail transaction")
		s.reply("503 no auth during mail transaction (#5.5.0)")
		return nil
	}
	mech, initial := splitCommand(arg)
	var user string
	check := func(u, password, challenge string) error {
		if u == "" || password == "" {
			return errAuthMalformed
		}
		user = u
		return s.checkPassword(u, password, challenge, mode.cram)
	}
	var srv sasl.Server
	switch ascii.Lower(mech) {
	case "login":
		srv = &loginServer{check: check}
	case "plain":
		srv = sasl.NewPlainServer(func(_, u, p string) error { return check(u, p, "") })
	case "cram-md5":
		srv = &cramServer{challenge: s.cramChallenge(), check: check}
		initial = "" // qmail ignores an initial response here
	default:
		s.log.Event("auth - type unimplemented")
		s.reply("504 auth type unimplemented (#5.5.1)")
		return nil
	}
	err := s.saslExchange(srv, initial)
	var ar *authReply
	switch {
	case err == nil:
		s.seenAuth = true
		s.protocol = "ESMTPA"
		s.relayClient, s.isRelay = "", true
		s.remoteInfo, s.hasInfo = user, true
		s.setEnv("TCPREMOTEINFO", user)
		s.setEnv("RELAYCLIENT", "")
		s.reply("235 ok, go ahead (#2.0.0)")
	case errors.Is(err, errAuthFailed):
		s.log.Event("auth - authentication failed")
		s.authFails++
		if s.MaxAuthFailures > 0 && s.authFails >= s.MaxAuthFailures {
			s.log.Event("auth - too many failures: quitting")
			s.reply(ReplyTooManyAuthFails)
			return exitSession{1}
		}
		s.reply("535 authentication failed (#5.7.1)")
	case errors.As(err, &ar):
		s.log.Event(ar.log)
		s.reply(ar.reply)
	default:
		return err // the connection failed
	}
	return nil
}

// saslExchange runs one SASL server over the SMTP connection: challenges
// as "334 BASE64", responses one base64 line each.
func (s *Session) saslExchange(srv sasl.Server, initial string) error {
	var resp []byte
	if initial != "" {
		var err error
		if resp, err = base64.StdEncoding.DecodeString(initial); err != nil {
			return errAuthMalformed
		}
		if resp == nil {
			resp = []byte{}
		}
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			var ar *authReply
			if errors.Is(err, errAuthFailed) || errors.As(err, &ar) {
				return err
			}
			return errAuthMalformed // go-sasl's "invalid response"
		}
		if done {
			return nil
		}
		s.reply("334 " + base64.StdEncoding.EncodeToString(challenge))
		line, err := s.readLine()
		if errors.Is(err, errLineTooLong) {
			return errAuthMalformed
		}
		if err != nil {
			return err
		}
		switch line {
		case "*":
			return errAuthCanceled
		case "":
			return errAuthMalformed
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil || len(resp) == 0 {
			return errAuthMalformed
		}
	}
}

// cramChallenge is "<PID.UNIXTIME@LOCAL>", as patch 0008 builds it.
func (s *Session) cramChallenge() string {
	return "<" + strconv.Itoa(s.Pid) + "." + strconv.FormatInt(s.Now().Unix(), 10) + "@" + s.cfg.Env.Local + ">"
}

// checkPassword runs the checkpassword chain with the credentials on fd 3:
// "user\0password\0", followed by "challenge\0" when a CRAM mode is
// configured (an empty challenge for LOGIN and PLAIN). Exit 0 accepts.
func (s *Session) checkPassword(user, password, challenge string, sendChallenge bool) error {
	var msg bytes.Buffer
	msg.WriteString(user)
	msg.WriteByte(0)
	msg.WriteString(password)
	msg.WriteByte(0)
	if sendChallenge {
		msg.WriteString(challenge)
		msg.WriteByte(0)
	}
	newPipe := s.authPipe
	if newPipe == nil {
		newPipe = os.Pipe
	}
	pr, pw, err := newPipe()
	if err != nil {
		return errAuthPipe
	}
	defer pr.Close()
	defer pw.Close()
	argv := s.cfg.CheckPassword
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{pr}
	cmd.Env = s.childEnv()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOMEM) {
			return errAuthFork // fork itself failed
		}
		// qmail's child exits 1 when execvp fails: an ordinary refusal.
		s.authFailPause()
		return errAuthFailed
	}
	pr.Close()
	_, werr := pw.Write(msg.Bytes())
	pw.Close()
	clear(msg.Bytes())
	err = cmd.Wait()
	if werr != nil {
		// qmail gives up on a failed write whatever the child does.
		return errAuthWrite
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return errAuthChild
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return errAuthChild
		}
		s.authFailPause()
		return errAuthFailed
	}
	return nil
}

func (s *Session) authFailPause() {
	if s.AuthFailDelay > 0 {
		s.flush()
		time.Sleep(s.AuthFailDelay)
	}
}

// childEnv is the session's base environment plus what the session set.
func (s *Session) childEnv() []string {
	env := s.ChildEnv
	if env == nil {
		env = os.Environ()
	}
	env = append([]string{}, env...)
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	return env
}

// loginServer is the LOGIN mechanism as qmail answers it: "Username:" and
// "Password:" prompts, the user name possibly as initial response.
type loginServer struct {
	check    func(user, password, challenge string) error
	user     []byte
	haveUser bool
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	if !l.haveUser {
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		l.user, l.haveUser = resp, true
		return []byte("Password:"), false, nil
	}
	if bytes.IndexByte(l.user, 0) >= 0 || bytes.IndexByte(resp, 0) >= 0 {
		return nil, true, errAuthMalformed
	}
	return nil, true, l.check(string(l.user), string(resp), "")
}

// cramServer is CRAM-MD5 (RFC 2195) for checkpassword: the digest is not
// verified here but handed on with the challenge, since only the
// checkpassword program knows the secret.
type cramServer struct {
	challenge string
	check     func(user, digest, challenge string) error
	sent      bool
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if !c.sent {
		c.sent = true
		return []byte(c.challenge), false, nil
	}
	if i := bytes.IndexByte(resp, 0); i >= 0 {
		resp = resp[:i]
	}
	r := string(resp)
	i := strings.LastIndexByte(r, ' ')
	if i < 0 {
		return nil, true, errAuthMalformed
	}
	user, digest := r[:i], strings.TrimLeft(r[i:], " ")
	return nil, true, c.check(user, digest, c.challenge)
}

// CramDigest is the CRAM-MD5 response digest for a secret and challenge:
// hex HMAC-MD5. Tests and checkpassword programs use it.
func CramDigest(secret, challenge string) string {
	m := hmac.New(md5.New, []byte(secret))
	io.WriteString(m, challenge)
	return hex.EncodeToString(m.Sum(nil))
}
