package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// maxReplyLine bounds one SMTP reply line (RFC 5321 allows 512 octets);
// maxReplyLines bounds a multiline reply. A server under test is not
// trusted to be well behaved.
const (
	maxReplyLine  = 2048
	maxReplyLines = 100
)

// ReadReply reads one SMTP reply, single or multiline, and returns its
// code and the text of its last line.
func ReadReply(r *bufio.Reader) (int, string, error) {
	for range maxReplyLines {
		line, err := readLine(r)
		if err != nil {
			return 0, "", err
		}
		code, more, text, err := parseReplyLine(line)
		if err != nil {
			return 0, "", err
		}
		if !more {
			return code, text, nil
		}
	}
	return 0, "", errors.New("reply longer than 100 lines")
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxReplyLine {
			return nil, errors.New("reply line too long")
		}
		line = append(line, chunk...)
		if err == nil {
			return bytes.TrimRight(line, "\r\n"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// parseReplyLine splits "250-text" / "250 text" / "250".
func parseReplyLine(line []byte) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("malformed reply %q", line)
	}
	for _, c := range line[:3] {
		if c < '0' || c > '9' {
			return 0, false, "", fmt.Errorf("malformed reply %q", line)
		}
	}
	code, _ = strconv.Atoi(string(line[:3]))
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("reply code out of range %q", line)
	}
	if len(line) == 3 {
		return code, false, "", nil
	}
	switch line[3] {
	case '-':
		return code, true, string(line[4:]), nil
	case ' ':
		return code, false, string(line[4:]), nil
	}
	return 0, false, "", fmt.Errorf("malformed reply %q", line)
}

// LatencyClient sends messages the way smtp-source does by default (one
// connection per message, several sessions in parallel) and times each
// transaction from MAIL FROM to the server's reply to the final dot: the
// time a client waits for the server to take responsibility (qmail and
// Postfix fsync the message before that reply).
type LatencyClient struct {
	Addr      string
	From, To  string
	Helo      string
	Message   []byte // dot-stuffed, CRLF line ends, without the final dot
	Sessions  int
	Messages  int
	IOTimeout time.Duration
}

// Run sends c.Messages messages and returns the transaction latencies.
// It stops at the first failure.
func (c *LatencyClient) Run(ctx context.Context) ([]time.Duration, error) {
	jobs := make(chan struct{})
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range max(1, c.Sessions) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				d, err := c.one(ctx)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				if err == nil {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for range c.Messages {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return lat, firstErr
	}
	return lat, ctx.Err()
}

func (c *LatencyClient) one(ctx context.Context) (time.Duration, error) {
	timeout := c.IOTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(conn)
	w := bufio.NewWriter(conn)
	expect := func(step string, want int) error {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		code, text, err := ReadReply(r)
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		if code != want {
			return fmt.Errorf("%s: %d %s", step, code, text)
		}
		return nil
	}
	if err := expect("greeting", 220); err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "HELO %s\r\n", c.Helo)
	if err := expect("HELO", 250); err != nil {
		return 0, err
	}
	start := time.Now()
	fmt.Fprintf(w, "MAIL FROM:<%s>\r\n", c.From)
	if err := expect("MAIL", 250); err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "RCPT TO:<%s>\r\n", c.To)
	if err := expect("RCPT", 250); err != nil {
		return 0, err
	}
	w.WriteString("DATA\r\n")
	if err := expect("DATA", 354); err != nil {
		return 0, err
	}
	w.Write(c.Message)
	w.WriteString(".\r\n")
	if err := expect("end of data", 250); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	w.WriteString("QUIT\r\n")
	w.Flush()
	ReadReply(r)
	return elapsed, nil
}

// TestMessage is a message of about size bytes of body with the headers
// a client would send, in SMTP's CRLF form (no line starts with a dot).
func TestMessage(from, to string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: goqmail benchmark\r\nMessage-ID: <bench@client.test>\r\n\r\n", from, to)
	line := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef"
	for n := 0; n < size; {
		l := line
		if size-n < len(l)+2 {
			l = line[:max(0, size-n-2)]
		}
		b.WriteString(l)
		b.WriteString("\r\n")
		n += len(l) + 2
	}
	return b.Bytes()
}
