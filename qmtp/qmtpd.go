package qmtp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// QMTP refusal texts, as netstrings (qmail-qmtpd.c).
const (
	replyNotRcpthost  = "66:Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1),"
	replyBadRecipient = "46:Dsorry, I can't handle that recipient (#5.1.3),"
	resultBadSender   = "Dunacceptable sender (#5.1.7)"
	resultDataBytes   = "Dsorry, that message size exceeds my databytes limit (#5.3.4)"
)

// Per-recipient outcome of one QMTP message.
const (
	rcptAccepted    = iota
	rcptNotRcpthost // domain not in rcpthosts
	rcptBad         // too long or containing NUL
)

// ServeQMTP runs a qmail-qmtpd session on conn: any number of messages,
// each answered with one netstring per recipient. It returns qmail-qmtpd's
// exit code and the error that ended the session (nil at a clean end).
func ServeQMTP(conn io.ReadWriter, cfg *Config) (int, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = ConnectionTimeout
	}
	setDeadline(conn, time.Now().Add(timeout))
	in := bufio.NewReaderSize(conn, 64<<10)
	out := bufio.NewWriterSize(conn, 4096)
	for {
		err := qmtpMessage(in, out, cfg)
		if ferr := out.Flush(); err == nil && ferr != nil {
			err = ferr
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ExitOK, nil
			}
			return exitCode(err), err
		}
	}
}

// qmtpMessage reads one message with its envelope, queues it, and writes
// the replies to out. io.EOF means the client ended the session cleanly
// between messages.
func qmtpMessage(in *bufio.Reader, out *bufio.Writer, cfg *Config) error {
	length, err := ReadLength(in, MaxLength)
	if err != nil {
		return err
	}
	if length == 0 {
		return fmt.Errorf("%w: empty message netstring", ErrMalformed)
	}
	q, err := cfg.openQueue()
	if err != nil {
		return fmt.Errorf("%w: starting qmail-queue: %v", errResources, err)
	}
	result, err := qmtpReceive(in, q, length, cfg)
	if err != nil {
		q.Fail(err)
		q.Close("", nil)
		return err
	}
	defer result.release()
	for _, r := range result.rcpts {
		switch r {
		case rcptAccepted:
			out.Write(AppendNetstring(nil, result.text))
		case rcptNotRcpthost:
			out.WriteString(replyNotRcpthost)
		default:
			out.WriteString(replyBadRecipient)
		}
	}
	// Written before the hold is released (see Config.Hold).
	return out.Flush()
}

type qmtpResult struct {
	rcpts []byte // outcome of every recipient, in order
	text  string // the reply of the accepted recipients
	// release ends the hold taken before qmail-queue's status was known.
	release func()
}

// qmtpReceive streams the body (length bytes, the first being the
// line-ending flag) into q, reads sender and recipients, and closes q.
func qmtpReceive(in *bufio.Reader, q Queue, length uint64, cfg *Config) (qmtpResult, error) {
	var res qmtpResult
	var accepted []string
	qp := q.Pid()
	flag, err := in.ReadByte()
	if err != nil {
		return res, unexpected(err)
	}
	length--
	var crlf bool
	switch flag {
	case '\n':
	case '\r':
		crlf = true
	default:
		return res, fmt.Errorf("%w: body flag %q", ErrMalformed, flag)
	}
	io.WriteString(q, cfg.received("QMTP"))
	body := &limitedWriter{w: q, limit: cfg.DataBytes}
	if crlf {
		err = copyCRLF(body, in, length)
	} else {
		// The stored size is known: refuse before streaming.
		if cfg.DataBytes > 0 && length > uint64(cfg.DataBytes) {
			body.over = true
		}
		_, err = io.CopyN(body, in, int64(length))
		err = unexpected(err)
	}
	if err != nil {
		return res, err
	}
	if body.over {
		q.Fail(errDataBytes)
	}
	if err := ReadComma(in); err != nil {
		return res, err
	}

	sender, tooLong, hasNUL, err := readAddress(in, MaxLength)
	if err != nil {
		return res, err
	}
	senderOK := !tooLong && !hasNUL

	if res.rcpts, accepted, err = qmtpRecipients(in, cfg); err != nil {
		return res, err
	}
	if err := ReadComma(in); err != nil {
		return res, err
	}

	if len(accepted) == 0 {
		q.Fail(errNoRecipients)
	}
	if !senderOK {
		q.Fail(errBadSender)
	}
	res.release = cfg.hold()
	qerr := q.Close(sender, accepted)
	switch {
	case !senderOK:
		res.text = resultBadSender
	case body.over:
		res.text = resultDataBytes
	case qerr != nil:
		res.text = qmailText(qerr)
	default:
		res.text = "Kok " + strconv.FormatInt(cfg.now().Unix(), 10) + " qp " + strconv.Itoa(qp)
	}
	return res, nil
}

var (
	errDataBytes    = errors.New("message exceeds databytes")
	errBadSender    = errors.New("unacceptable sender")
	errNoRecipients = errors.New("no acceptable recipients")
)

// qmtpRecipients reads the recipient list netstring (up to, not
// including, its comma) and decides on each recipient: relay clients get
// $RELAYCLIENT appended, others pass the rcpthosts check.
func qmtpRecipients(in *bufio.Reader, cfg *Config) (outcomes []byte, accepted []string, err error) {
	listLen, err := ReadLength(in, MaxLength)
	if err != nil {
		return nil, nil, err
	}
	if listLen > MaxEnvelope {
		return nil, nil, fmt.Errorf("%w: recipient list of %d bytes", errResources, listLen)
	}
	list := &io.LimitedReader{R: in, N: int64(listLen)}
	lr := bufio.NewReaderSize(list, 1024)
	left := func() uint64 { return uint64(list.N) + uint64(lr.Buffered()) }
	e := cfg.Env
	for left() > 0 {
		n, err := ReadLength(lr, MaxLength)
		if err != nil {
			if left() == 0 {
				return nil, nil, fmt.Errorf("%w: recipient length runs past its list", ErrMalformed)
			}
			return nil, nil, unexpected(err)
		}
		if n >= left() {
			return nil, nil, fmt.Errorf("%w: recipient runs past its list", ErrMalformed)
		}
		rcpt, tooLong, hasNUL, err := readAddressBody(lr, n, uint64(len(e.RelayClient)))
		if err != nil {
			return nil, nil, err
		}
		outcome := byte(rcptAccepted)
		switch {
		case tooLong:
			outcome = rcptBad
		case e.IsRelayClient:
			if hasNUL {
				outcome = rcptBad
			}
			rcpt += e.RelayClient
		default:
			if hasNUL {
				outcome = rcptBad
			}
			allowed, err := cfg.RcptHosts.Allowed(rcpt)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %v", errResources, err)
			}
			if !allowed {
				outcome = rcptNotRcpthost
			}
		}
		if outcome == rcptAccepted {
			accepted = append(accepted, rcpt)
		}
		outcomes = append(outcomes, outcome)
	}
	return outcomes, accepted, nil
}

// readAddress reads a sender or recipient netstring of at most max bytes.
func readAddress(r ByteReader, max uint64) (addr string, tooLong, hasNUL bool, err error) {
	n, err := ReadLength(r, max)
	if err != nil {
		return "", false, false, unexpected(err)
	}
	return readAddressBody(r, n, 0)
}

// readAddressBody reads the n bytes and the comma of an address whose
// length was read. An address that would reach maxAddress bytes (with
// extra bytes to be appended) is skipped without being held, as qmail
// does; the content is returned even when it holds a NUL, which makes it
// unacceptable.
func readAddressBody(r ByteReader, n, extra uint64) (addr string, tooLong, hasNUL bool, err error) {
	if n+extra >= maxAddress {
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return "", false, false, unexpected(err)
		}
		return "", true, false, ReadComma(r)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", false, false, unexpected(err)
	}
	if err := ReadComma(r); err != nil {
		return "", false, false, err
	}
	return string(b), false, bytes.IndexByte(b, 0) >= 0, nil
}

// limitedWriter passes bytes on and notes when more than limit bytes
// were written (limit 0: no limit): qmail's bytestooverflow.
type limitedWriter struct {
	w     io.Writer
	limit int64
	n     int64
	over  bool
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.n += int64(len(p))
	if l.limit > 0 && l.n > l.limit {
		l.over = true
	}
	if l.over {
		return len(p), nil
	}
	return l.w.Write(p)
}

// copyCRLF copies n bytes of a CRLF body, turning each CR LF into LF and
// keeping every other CR (qmail-qmtpd's flagdos loop).
func copyCRLF(dst io.Writer, src *bufio.Reader, n uint64) error {
	w := bufio.NewWriterSize(dst, 8192)
	pendingCR := false
	for ; n > 0; n-- {
		c, err := src.ReadByte()
		if err != nil {
			return unexpected(err)
		}
		if pendingCR {
			pendingCR = false
			if c != '\n' {
				w.WriteByte('\r')
			}
		}
		if c == '\r' && n > 1 {
			pendingCR = true
			continue
		}
		w.WriteByte(c)
	}
	return w.Flush()
}

// qmailText is the report text of a queue error, with its D/Z letter.
func qmailText(err error) string {
	type lettered interface{ Letter() byte }
	if l, ok := err.(lettered); ok {
		return string(l.Letter()) + err.Error()
	}
	return "Z" + err.Error()
}
