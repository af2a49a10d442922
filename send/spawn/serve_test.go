package spawn

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// fixedChannel answers every request with the same report, without
// running a program.
type fixedChannel struct{ report string }

func (f fixedChannel) Command(Request, int, *os.File) (*exec.Cmd, string) { return nil, f.report }
func (fixedChannel) Report(Child) string                                  { return "" }
func (fixedChannel) OutputLimit() int                                     { return 100 }

// TestServeReportNUL checks that a report containing a NUL is cut there
// on the wire: the NUL is the report terminator, and the bytes after it
// would reach qmail-send as a report for some other slot.
func TestServeReportNUL(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "5"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "5", "28"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ report, want string }{
		{"Kok\n", "\x03Kok\n\x00"},
		{"Kok\n\x00\x07Kforged\n", "\x03Kok\n\x00"},
	} {
		s := &Server{MessDir: dir, MessOwner: os.Getuid(), Channel: fixedChannel{tc.report}}
		var out bytes.Buffer
		in := bytes.NewReader(AppendRequest(nil, 3, "5/28", "a@b", "c@d"))
		if err := s.Serve(in, &out); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if got[0] != MaxSlots {
			t.Fatalf("first byte %d, want %d", got[0], MaxSlots)
		}
		if got[1:] != tc.want {
			t.Errorf("report %q: wire %q, want %q", tc.report, got[1:], tc.want)
		}
	}
}

// fixedLookup assigns every local part to the same account.
type fixedLookup struct{ a Assignment }

func (f fixedLookup) Lookup(string) (Assignment, error) { return f.a, nil }

// TestLocalCommandIDs checks the ids a root qmail-lspawn switches to: uid
// 0 is refused, and so is an id that does not fit in 32 bits, which would
// otherwise be cut (4294967296 becoming root).
func TestLocalCommandIDs(t *testing.T) {
	for _, tc := range []struct {
		uid, gid int
		report   string
	}{
		{1000, 1000, ""},
		{0, 1000, "ZNot allowed to perform deliveries as root.\n"},
		{1 << 32, 1000, "ZInternal qmail-lspawn bug.\n"},
		{1<<32 + 5, 1000, "ZInternal qmail-lspawn bug.\n"},
		{1000, 1 << 32, "ZInternal qmail-lspawn bug.\n"},
		{-1, 1000, "ZInternal qmail-lspawn bug.\n"},
	} {
		l := &Local{Home: "/var/qmail", DefaultDeliver: "./Maildir/", AsRoot: true,
			Users: fixedLookup{Assignment{User: "u", UID: tc.uid, GID: tc.gid, Home: "/home/u"}}}
		req := Request{MessID: "5/28", Sender: "a@b", Recipient: "u@example.org"}
		cmd, report := l.Command(req, 1, nil)
		if report != tc.report || (cmd == nil) != (tc.report != "") {
			t.Errorf("uid %d gid %d: report %q, command %v; want %q", tc.uid, tc.gid, report, cmd != nil, tc.report)
			continue
		}
		if cmd != nil {
			cred := cmd.SysProcAttr.Credential
			if int(cred.Uid) != tc.uid || int(cred.Gid) != tc.gid {
				t.Errorf("uid %d gid %d: runs as %d:%d", tc.uid, tc.gid, cred.Uid, cred.Gid)
			}
		}
	}
}
