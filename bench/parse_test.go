package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		in      string
		code    int
		text    string
		wantErr bool
	}{
		{"220 mail.example ESMTP\r\n", 220, "mail.example ESMTP", false},
		{"250-first\r\n250-second\r\n250 last\r\n", 250, "last", false},
		{"354\r\n", 354, "", false},
		{"250 no CR\n", 250, "no CR", false},
		{"25\r\n", 0, "", true},
		{"abc text\r\n", 0, "", true},
		{"250xtext\r\n", 0, "", true},
		{"999 out of range\r\n", 0, "", true},
		{"250-unterminated", 0, "", true},
		{"250 " + strings.Repeat("x", 5000) + "\r\n", 0, "", true},
		{strings.Repeat("250-more\r\n", 200) + "250 end\r\n", 0, "", true},
	}
	for _, tt := range tests {
		code, text, err := ReadReply(bufio.NewReaderSize(strings.NewReader(tt.in), 16))
		if (err != nil) != tt.wantErr || code != tt.code || text != tt.text {
			t.Errorf("ReadReply(%.40q) = %d %q %v", tt.in, code, text, err)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"220 ok\r\n", "250-a\r\n250 b\r\n", "354\r\n", "2", "250-x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		code, text, err := ReadReply(bufio.NewReaderSize(bytes.NewReader(b), 16))
		if err == nil && (code < 200 || code > 599 || len(text) > maxReplyLine) {
			t.Fatalf("accepted code %d text %d bytes", code, len(text))
		}
	})
}

func TestParseSinkCounters(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want bool
	}{
		{"sess=3 quit=3 mesg=4", 4, true},
		{"mesg=0", 0, true},
		{"sess=1 quit=0", 0, false},
		{"mesg=-1", 0, false},
		{"mesg=x", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		n, ok := ParseSinkCounters([]byte(tt.in))
		if n != tt.n || ok != tt.want {
			t.Errorf("ParseSinkCounters(%q) = %d, %v", tt.in, n, ok)
		}
	}
	// The counter line is redrawn with carriage returns.
	sc := bufio.NewScanner(strings.NewReader("sess=1 quit=0 mesg=1\rsess=2 quit=1 mesg=2\r"))
	sc.Split(scanCRorLF)
	var last int
	for sc.Scan() {
		if n, ok := ParseSinkCounters(sc.Bytes()); ok {
			last = n
		}
	}
	if last != 2 {
		t.Errorf("last counter %d, want 2", last)
	}
}

func FuzzParseSinkCounters(f *testing.F) {
	f.Add([]byte("sess=3 quit=3 mesg=4"))
	f.Add([]byte("mesg=99999999999999999999"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, ok := ParseSinkCounters(b); ok && n < 0 {
			t.Fatalf("negative count %d", n)
		}
	})
}

func TestParseCPUStat(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"usage_usec 241229\nuser_usec 241229\nsystem_usec 0\n", 241229 * time.Microsecond, false},
		{"user_usec 1\nusage_usec 5", 5 * time.Microsecond, false},
		{"user_usec 1\n", 0, true},
		{"usage_usec -5\n", 0, true},
		{"usage_usec 99999999999999999999\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseCPUStat([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseCPUStat(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func FuzzParseCPUStat(f *testing.F) {
	f.Add([]byte("usage_usec 241229\nuser_usec 241229\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseCPUStat(b); err == nil && d < 0 {
			t.Fatalf("negative CPU %v", d)
		}
	})
}

func TestParseProcStatus(t *testing.T) {
	status := "Name:\tqmail-send\nVmHWM:\t    9876 kB\nVmRSS:\t    1234 kB\nThreads:\t5\n"
	tests := []struct {
		in, name string
		want     int64
	}{
		{status, "VmRSS", 1234 * 1024},
		{status, "VmHWM", 9876 * 1024},
		{status, "VmSwap", 0},
		{"Rss: 10 kB\nPss:                 417 kB\n", "Pss", 417 * 1024},
		{"VmRSS:\t12 MB\n", "VmRSS", 0},
		{"VmRSS:\t-12 kB\n", "VmRSS", 0},
	}
	for _, tt := range tests {
		if got := parseProcStatus([]byte(tt.in), tt.name); got != tt.want {
			t.Errorf("parseProcStatus(%q, %s) = %d, want %d", tt.in, tt.name, got, tt.want)
		}
	}
}

func FuzzParseProcStatus(f *testing.F) {
	f.Add([]byte("VmRSS:\t 1234 kB\n"), "VmRSS")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		if n := parseProcStatus(b, name); n < 0 {
			t.Fatalf("negative size %d", n)
		}
	})
}

func TestParseCgroup2Mount(t *testing.T) {
	hybrid := `25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
`
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{hybrid, "/sys/fs/cgroup/unified", false},
		{"28 22 0:25 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup", false},
		{"28 22 0:25 / /my\\040cgroups rw - cgroup2 none rw\n", "/my cgroups", false},
		{"32 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := parseCgroup2Mount([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseCgroup2Mount(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func FuzzParseCgroup2Mount(f *testing.F) {
	f.Add([]byte("31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n"))
	f.Add([]byte("1 2 3 4 /a\\04 - cgroup2 x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseCgroup2Mount(b)
	})
}

func TestTestMessage(t *testing.T) {
	for _, size := range []int{0, 1, 100, 4096} {
		msg := TestMessage(Sender, "user@bench.test", size)
		head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
		if !ok || !bytes.Contains(head, []byte("To: <user@bench.test>")) {
			t.Fatalf("size %d: no header", size)
		}
		if len(body) < size || len(body) > size+2 {
			t.Errorf("size %d: body %d bytes", size, len(body))
		}
		for _, line := range bytes.Split(msg, []byte("\r\n")) {
			if bytes.HasPrefix(line, []byte(".")) || bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("size %d: line %q needs stuffing or has a bare CR/LF", size, line)
			}
		}
	}
}

func TestWaitDelivered(t *testing.T) {
	counter := func(seq ...int) func() (int, error) {
		i := 0
		return func() (int, error) {
			n := seq[min(i, len(seq)-1)]
			i++
			return n, nil
		}
	}
	done := make(chan struct{})
	close(done)
	noErr := func() error { return nil }
	tests := []struct {
		name    string
		count   func() (int, error)
		loadErr func() error
		wantErr string
	}{
		{"all delivered", counter(0, 3, 10), noErr, ""},
		{"duplicates", counter(5, 11), noErr, "11 deliveries for 10"},
		{"stall", counter(1, 2, 2), noErr, "stalled: 2 of 10"},
		{"load fails", counter(0), func() error { return errors.New("smtp-source: refused") }, "refused"},
		{"count fails", func() (int, error) { return 0, errors.New("gone") }, noErr, "counting deliveries: gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := waitDelivered(context.Background(), tt.count, 10, 100*time.Millisecond, done, tt.loadErr)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestFsyncRenameRate(t *testing.T) {
	dir := t.TempDir()
	rate, err := FsyncRenameRate(context.Background(), dir, 2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Fatalf("rate %v", rate)
	}
	// Every operation left one renamed file and no temporary one.
	total := 0
	for _, w := range []string{"writer0", "writer1"} {
		n, err := CountDir(dir + "/" + w)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		tmp, _ := filepath.Glob(dir + "/" + w + "/tmp.*")
		if len(tmp) != 0 {
			t.Errorf("%s: temporary files left: %v", w, tmp)
		}
	}
	if total == 0 {
		t.Fatal("no files written")
	}
	if _, err := CountDir(dir + "/missing"); err == nil {
		t.Error("CountDir of a missing directory succeeded")
	}
}

func TestCappedBuffer(t *testing.T) {
	c := &cappedBuffer{max: 5}
	for _, s := range []string{"abc", "defgh", "ij"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if c.String() != "abcde" {
		t.Errorf("kept %q, want abcde", c.String())
	}
}
