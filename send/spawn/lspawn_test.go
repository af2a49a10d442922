package spawn_test

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/send/spawn"
)

// runSpawner sends requests to a real spawner binary and returns its
// concurrency byte and its replies by slot.
func runSpawner(t *testing.T, home string, attr *syscall.SysProcAttr, argv []string, envv []string, reqs []byte, n int) (byte, map[byte]string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = attr
	cmd.Env = append(os.Environ(), envv...)
	cmd.Env = append(cmd.Env, "QMAILHOME="+home)
	cmd.Stdin = bytes.NewReader(reqs)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	conc, err := r.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	replies := map[byte]string{}
	for i := 0; i < n; i++ {
		slot, err := r.ReadByte()
		if err != nil {
			t.Fatalf("reply %d: %v (have %q)", i, err, replies)
		}
		text, err := r.ReadString(0)
		if err != nil {
			t.Fatalf("reply %d: %v (have %q)", i, err, replies)
		}
		replies[slot] = text[:len(text)-1]
	}
	if rest, _ := io.ReadAll(r); len(rest) > 0 {
		t.Errorf("extra output %q", rest)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("spawner: %v", err)
	}
	return conc, replies
}

// unprivileged runs the spawner as nobody when the test runs as root:
// an unprivileged home has no alias account, and qmail-lspawn never
// delivers as root.
func unprivileged(t *testing.T, home string) *syscall.SysProcAttr {
	t.Helper()
	if os.Getuid() != 0 {
		return nil
	}
	const nobody = 65534
	err := filepath.Walk(home, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := filepath.EvalSymlinks(filepath.Join(home, "bin", "qmail-lspawn"))
	if err != nil {
		bin, err = filepath.EvalSymlinks(filepath.Join(home, "bin", "qmail-rspawn"))
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Dir(home), filepath.Dir(bin)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
}

func TestLspawnProtocol(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-lspawn", "qmail-local")
	mess := filepath.Join(home, "queue", "mess", "5")
	if err := os.WriteFile(filepath.Join(mess, "28"), []byte("Subject: x\n\nhi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "alias", ".qmail-prog"), []byte("|echo \"$SENDER $RECIPIENT\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var req []byte
	req = spawn.AppendRequest(req, 0, "5/28", "a@b", "prog@testhost.example")
	req = spawn.AppendRequest(req, 1, "5/28", "a@b", "nosuch@testhost.example")
	req = spawn.AppendRequest(req, 2, "5/x", "a@b", "prog@testhost.example")
	req = spawn.AppendRequest(req, 3, "5/28", "a@b", "nohost")
	req = spawn.AppendRequest(req, 4, "5/28", "a@b", "@testhost.example")
	req = spawn.AppendRequest(req, 5, "5/99", "a@b", "prog@testhost.example")
	req = spawn.AppendRequest(req, 200, "5/28", "a@b", "prog@testhost.example")
	attr := unprivileged(t, home)
	replies := 7
	if attr != nil {
		// Only root can make a message that qmail-queue's account
		// does not own.
		if err := os.WriteFile(filepath.Join(mess, "51"), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(mess, "51"), 1234, 1234); err != nil {
			t.Fatal(err)
		}
		req = spawn.AppendRequest(req, 6, "5/51", "a@b", "prog@testhost.example")
		replies++
	}
	conc, got := runSpawner(t, home, attr, []string{filepath.Join(home, "bin", "qmail-lspawn"), "./Maildir/"}, nil, req, replies)
	if conc != spawn.MaxSlots {
		t.Errorf("concurrency byte %d", conc)
	}
	want := map[byte]string{
		0:   "Ka@b prog@testhost.example\ndid 0+0+1\n",
		1:   "DSorry, no mailbox here by that name. (#5.1.1)\n",
		2:   "DInternal error: messid has nonnumerics. (#5.3.5)\n",
		3:   "DSorry, address must include host name. (#5.1.3)\n",
		4:   "K",
		5:   "Zqmail-spawn unable to open message. (#4.3.0)\n",
		200: "ZInternal error: delnum too big. (#4.3.5)\n",
	}
	if attr != nil {
		want[6] = "ZSorry, message has wrong owner. (#4.3.5)\n"
	}
	for slot, w := range want {
		if got[slot] != w {
			t.Errorf("slot %d: %q, want %q", slot, got[slot], w)
		}
	}
}

func TestRspawnProtocol(t *testing.T) {
	t.Parallel()
	home := testenv.NewHome(t, "qmail-rspawn")
	mess := filepath.Join(home, "queue", "mess", "5")
	if err := os.WriteFile(filepath.Join(mess, "28"), []byte("Subject: x\n\nhi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(home, "bin", "fake-remote")
	err := os.WriteFile(script, []byte("#!/bin/sh\n"+
		"case $3 in\n"+
		"ok@*) printf 'r\\0K%s accepted %s from %s./\\0' \"$1\" \"$3\" \"$2\";;\n"+
		"hard@*) printf 'h%s does not like recipient.\\nRemote host said: 550 no\\n\\0DGiving up on %s.\\n\\0' \"$1\" \"$1\";;\n"+
		"soft@*) exit 111;;\n"+
		"crash@*) kill -9 $$;;\n"+
		"silent@*) ;;\n"+
		"esac\n"), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	tcpto := filepath.Join(home, "queue", "lock", "tcpto")
	if err := os.WriteFile(tcpto, bytes.Repeat([]byte{7}, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	var req []byte
	for i, r := range []string{"ok@far.example", "hard@far.example", "soft@far.example", "crash@far.example", "silent@far.example"} {
		req = spawn.AppendRequest(req, byte(i), "5/28", "a@b", r)
	}
	_, got := runSpawner(t, home, unprivileged(t, home), []string{filepath.Join(home, "bin", "qmail-rspawn")}, []string{"QMAILREMOTE=" + script}, req, 5)
	want := map[byte]string{
		0: "Kfar.example accepted ok@far.example from a@b./",
		1: "Dfar.example does not like recipient.\nRemote host said: 550 no\nGiving up on far.example.\n",
		2: "ZUnable to run qmail-remote.\n",
		3: "Zqmail-remote crashed.\n",
		4: "Zqmail-remote produced no output.\n",
	}
	for slot, w := range want {
		if got[slot] != w {
			t.Errorf("slot %d: %q, want %q", slot, got[slot], w)
		}
	}
	b, err := os.ReadFile(tcpto)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Trim(string(b), "\x00") != "" {
		t.Errorf("lock/tcpto was not cleared at startup")
	}
}
