package qmtp

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"time"
)

// resultBadAddress is qmail-qmqpd's reply when the sender or a recipient
// is 1000 bytes or longer or contains NUL.
const resultBadAddress = "Dsorry, I can't accept addresses like that (#5.1.3)"

// maxOuterDigits is how many bytes qmail-qmqpd reads looking for the end
// of the first length, before it knows how long the request is.
const maxOuterDigits = 100

// ServeQMQP runs a qmail-qmqpd session on conn: one request, one
// netstring in reply. It returns qmail-qmqpd's exit code and the error
// that ended the session early (nil when a reply was sent).
func ServeQMQP(conn io.ReadWriter, cfg *Config) (int, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = ConnectionTimeout
	}
	setDeadline(conn, time.Now().Add(timeout))
	result, release, err := qmqpRequest(bufio.NewReaderSize(conn, 64<<10), cfg)
	if err != nil {
		return exitCode(err), err
	}
	// The reply is written before the hold is released (Config.Hold).
	_, err = conn.Write(AppendNetstring(nil, result))
	release()
	if err != nil {
		return ExitOK, err
	}
	return ExitOK, nil
}

// request is the outer netstring of a QMQP request: every byte read is
// counted against its length, and reading past it is a framing error.
type request struct {
	r    *bufio.Reader
	left uint64
}

func (q *request) ReadByte() (byte, error) {
	if q.left == 0 {
		return 0, fmt.Errorf("%w: request longer than announced", ErrMalformed)
	}
	c, err := q.r.ReadByte()
	if err != nil {
		return 0, unexpected(err)
	}
	q.left--
	return c, nil
}

func (q *request) Read(p []byte) (int, error) {
	if q.left == 0 {
		return 0, fmt.Errorf("%w: request longer than announced", ErrMalformed)
	}
	if uint64(len(p)) > q.left {
		p = p[:q.left]
	}
	n, err := q.r.Read(p)
	q.left -= uint64(n)
	if n > 0 {
		return n, nil
	}
	return n, unexpected(err)
}

// qmqpRequest reads a request, streaming the message into the queue,
// and returns the reply text and the release of the hold taken before
// qmail-queue's status was known (see Config.Hold).
func qmqpRequest(in *bufio.Reader, cfg *Config) (string, func(), error) {
	req := &request{r: in, left: maxOuterDigits}
	total, err := ReadLength(req, MaxLength)
	if err != nil {
		return "", nil, unexpected(err)
	}
	req.left = total
	msgLen, err := ReadLength(req, MaxLength)
	if err != nil {
		return "", nil, err
	}
	q, err := cfg.openQueue()
	if err != nil {
		return "", nil, fmt.Errorf("%w: starting qmail-queue: %v", errResources, err)
	}
	qp := q.Pid()
	fail := func(err error) (string, func(), error) {
		q.Fail(err)
		q.Close("", nil)
		return "", nil, err
	}
	io.WriteString(q, cfg.received("QMQP"))
	if _, err := io.CopyN(q, req, int64(msgLen)); err != nil {
		return fail(err)
	}
	if err := ReadComma(req); err != nil {
		return fail(err)
	}
	ok := true
	sender, tooLong, hasNUL, err := readAddress(req, MaxLength)
	if err != nil {
		return fail(err)
	}
	if tooLong || hasNUL {
		sender, ok = "", false
	}
	var recipients []string
	stored := 0
	for req.left > 0 {
		rcpt, tooLong, hasNUL, err := readAddress(req, MaxLength)
		if err != nil {
			return fail(err)
		}
		if tooLong || hasNUL {
			ok = false
			continue
		}
		if stored += len(rcpt) + 16; stored > MaxEnvelope {
			return fail(fmt.Errorf("%w: more than %d bytes of recipients", errResources, MaxEnvelope))
		}
		recipients = append(recipients, rcpt)
	}
	req.left = 1
	if err := ReadComma(req); err != nil {
		return fail(err)
	}
	if !ok {
		q.Fail(errBadAddress)
	}
	release := cfg.hold()
	qerr := q.Close(sender, recipients)
	switch {
	case !ok:
		return resultBadAddress, release, nil
	case qerr != nil:
		return qmailText(qerr), release, nil
	}
	return "Kok " + strconv.FormatInt(cfg.now().Unix(), 10) + " qp " + strconv.Itoa(qp), release, nil
}

var errBadAddress = fmt.Errorf("unacceptable address")
