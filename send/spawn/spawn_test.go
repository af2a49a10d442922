package spawn

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/users"
)

func TestRequestReader(t *testing.T) {
	var in []byte
	in = AppendRequest(in, 3, "7/12345", "a@b", "c@d")
	in = AppendRequest(in, 0, "1/1", "", "x@y")
	in = AppendRequest(in, 5, "2/2", strings.Repeat("s", maxField+10), "z@w")
	in = append(in, 9, '1') // a partial request at the end is dropped
	rr := NewRequestReader(bytes.NewReader(in))
	want := []Request{
		{Slot: 3, MessID: "7/12345", Sender: "a@b", Recipient: "c@d"},
		{Slot: 0, MessID: "1/1", Sender: "", Recipient: "x@y"},
		{Slot: 5, MessID: "2/2", Sender: "", Recipient: "z@w", TooLong: true},
	}
	for i, w := range want {
		got, err := rr.Next()
		if err != nil || got != w {
			t.Fatalf("request %d = %+v, %v; want %+v", i, got, err, w)
		}
	}
	if _, err := rr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last request: %v, want EOF", err)
	}
}

func TestValidMessID(t *testing.T) {
	for id, want := range map[string]string{
		"12/345":                 "",
		"/12":                    "DInternal error: messid has nonnumerics. (#5.3.5)\n",
		"1a":                     "DInternal error: messid has nonnumerics. (#5.3.5)\n",
		"../x":                   "DInternal error: messid has nonnumerics. (#5.3.5)\n",
		"":                       "DInternal error: messid too short. (#5.3.5)\n",
		strings.Repeat("1", 101): "DInternal error: messid too long. (#5.3.5)\n",
		// spawn.c counts the terminating NUL: 100 characters are too long.
		strings.Repeat("1", 100): "DInternal error: messid too long. (#5.3.5)\n",
		strings.Repeat("1", 99):  "",
	} {
		if got := ValidMessID(id); got != want {
			t.Errorf("ValidMessID(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestFoldRemote(t *testing.T) {
	tests := []struct{ out, want string }{
		{"", "Zqmail-remote produced no output.\n"},
		{"r\x00K1.2.3.4 accepted message./Remote host said: 250 ok\n\x00", "K1.2.3.4 accepted message./Remote host said: 250 ok\n"},
		{"h1.2.3.4 does not like recipient.\nRemote host said: 550 no\n\x00DGiving up on 1.2.3.4.\n\x00",
			"D1.2.3.4 does not like recipient.\nRemote host said: 550 no\nGiving up on 1.2.3.4.\n"},
		{"s1.2.3.4 does not like recipient.\nRemote host said: 450 later\n\x00DGiving up on 1.2.3.4.\n\x00",
			"Z1.2.3.4 does not like recipient.\nRemote host said: 450 later\nGiving up on 1.2.3.4.\n"},
		{"hno\n\x00KOK\n\x00", "Dno\n"}, // a success is milder than the rejection: not shown
		{"s1.2.3.4 does not like recipient.\n\x00ZSorry.\n\x00", "Z1.2.3.4 does not like recipient.\nSorry.\n"},
		{"ZConnected to 1.2.3.4 but greeting failed.\n\x00", "ZConnected to 1.2.3.4 but greeting failed.\n"},
		{"DSorry, I couldn't find any host named x. (#5.1.2)\n\x00", "DSorry, I couldn't find any host named x. (#5.1.2)\n"},
		{"r\x00", "D"},
		{"garbage without nul", "D"},
	}
	for _, tc := range tests {
		if got := FoldRemote([]byte(tc.out)); got != tc.want {
			t.Errorf("FoldRemote(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}

func TestRemoteReport(t *testing.T) {
	r := &Remote{}
	for _, tc := range []struct {
		c    Child
		want string
	}{
		{Child{Crashed: true}, "Zqmail-remote crashed.\n"},
		{Child{ExitCode: 111}, "ZUnable to run qmail-remote.\n"},
		{Child{ExitCode: 100}, "DUnable to run qmail-remote.\n"},
		{Child{ExitCode: 1}, "DUnable to run qmail-remote.\n"},
		{Child{ExitCode: -111}, "ZUnable to run qmail-remote.\n"},
		{Child{ExitCode: 0, Output: []byte("KOK\n\x00")}, "KOK\n"},
	} {
		if got := r.Report(tc.c); got != tc.want {
			t.Errorf("Report(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestLocalReport(t *testing.T) {
	l := &Local{}
	for _, tc := range []struct {
		c    Child
		want string
	}{
		{Child{ExitCode: 0, Output: []byte("did 0+0+1\n")}, "Kdid 0+0+1\n"},
		{Child{ExitCode: 111, Output: []byte("later\n")}, "Zlater\n"},
		{Child{ExitCode: 71, Output: []byte("x")}, "Zx"},
		{Child{ExitCode: 74}, "Z"},
		{Child{ExitCode: 75}, "Z"},
		{Child{ExitCode: 100, Output: []byte("no\n")}, "Dno\n"},
		// A .qmail program's output goes into the report; qmail-lspawn
		// stops at its first NUL, which would otherwise end the report
		// on the wire and make the rest look like another slot's report.
		{Child{ExitCode: 0, Output: []byte("did 0+0+1\n\x00\x05Kforged\n")}, "Kdid 0+0+1\n"},
		{Child{ExitCode: 111, Output: []byte("\x00rest")}, "Z"},
		{Child{ExitCode: 1}, "D"},
		{Child{Crashed: true}, "Zqmail-local crashed.\n"},
		{Child{ExitCode: 112}, "ZInternal qmail-lspawn bug.\n"},
		{Child{ExitCode: 113}, "ZNot allowed to perform deliveries as root.\n"},
		{Child{ExitCode: 115}, "ZNFS failure in qmail-local.\n"},
		{Child{ExitCode: 116}, "ZUnable to find alias user!\n"},
		{Child{ExitCode: 117}, "ZTrouble reading users/cdb in qmail-lspawn.\n"},
		{Child{ExitCode: 118}, "ZTemporary failure in qmail-lspawn.\n"},
		{Child{ExitCode: 119}, "ZOut of memory in qmail-lspawn.\n"},
		{Child{ExitCode: 120}, "ZUnable to run qmail-local.\n"},
		{Child{ExitCode: 121}, "ZUnable to run qmail-getpw.\n"},
		{Child{ExitCode: 126}, "DUnable to run qmail-local.\n"},
		{Child{ExitCode: -100}, "DUnable to run qmail-local.\n"},
		{Child{ExitCode: -111}, "ZUnable to run qmail-local.\n"},
	} {
		if got := l.Report(tc.c); got != tc.want {
			t.Errorf("Report(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestUsersErrors(t *testing.T) {
	for code, want := range map[int]string{
		users.ExitCDB:     "ZTrouble reading users/cdb in qmail-lspawn.\n",
		users.ExitNoAlias: "ZUnable to find alias user!\n",
		users.ExitUsage:   "ZInternal qmail-lspawn bug.\n",
	} {
		if got := localExitReports[code]; got != want {
			t.Errorf("exit %d: %q, want %q", code, got, want)
		}
	}
}

func TestTruncation(t *testing.T) {
	b := &limitedBuffer{limit: 3000}
	b.Write(bytes.Repeat([]byte("x"), 2000))
	b.Write(bytes.Repeat([]byte("y"), 2000))
	got := b.bytes()
	if len(got) != 3000-3 || !bytes.HasSuffix(got, []byte(truncMessage)) {
		t.Fatalf("truncated report: %d bytes, ends %q", len(got), got[len(got)-40:])
	}
	exact := &limitedBuffer{limit: 10}
	exact.Write([]byte("0123456789"))
	if string(exact.bytes()) != "0123456789" {
		t.Fatalf("a report of exactly the limit was cut: %q", exact.bytes())
	}
}

func FuzzRequestReader(f *testing.F) {
	f.Add(AppendRequest(nil, 1, "1/1", "a@b", "c@d"))
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte("\x05abc"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := NewRequestReader(bytes.NewReader(in))
		for n := 0; ; n++ {
			req, err := rr.Next()
			if err != nil {
				return
			}
			if n > len(in) {
				t.Fatal("more requests than input bytes")
			}
			if !req.TooLong {
				again, err := NewRequestReader(bytes.NewReader(AppendRequest(nil, req.Slot, req.MessID, req.Sender, req.Recipient))).Next()
				if err != nil || again != req {
					t.Fatalf("round trip of %+v gave %+v, %v", req, again, err)
				}
			}
		}
	})
}

func FuzzFoldRemote(f *testing.F) {
	f.Add([]byte("r\x00Kok\n\x00"))
	f.Add([]byte("hno\x00Dbye\x00"))
	f.Add([]byte("s\x00"))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, out []byte) {
		got := FoldRemote(out)
		if got == "" || !strings.ContainsRune("KZD", rune(got[0])) {
			t.Fatalf("FoldRemote(%q) = %q: no letter", out, got)
		}
		if len(got) > len(out)+len("Zqmail-remote produced no output.\n") {
			t.Fatalf("FoldRemote(%q) = %q grew", out, got)
		}
		if strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("FoldRemote(%q) = %q contains NUL", out, got)
		}
	})
}
