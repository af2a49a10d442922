package worker

import (
	"bytes"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// qmailLocalArgs are the arguments qmail-lspawn gives qmail-local.
var qmailLocalArgs = []string{"--", "alias", "/var/qmail/alias", "box", "-", "", "testhost.example", "a@b", "./Maildir/"}

func TestEncodeArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // "" with ok false: refused
		ok   bool
	}{
		{"none", nil, "", true},
		{"one", []string{"a"}, "a\x00", true},
		{"empty arguments", []string{"", ""}, "\x00\x00", true},
		{"qmail-local", qmailLocalArgs, strings.Join(qmailLocalArgs, "\x00") + "\x00", true},
		{"binary", []string{"\xff\n\r ", "\x01"}, "\xff\n\r \x00\x01\x00", true},
		{"NUL inside", []string{"a\x00b"}, "", false},
		{"NUL alone", []string{"ok", "\x00"}, "", false},
		{"maxArgs", make([]string, maxArgs), strings.Repeat("\x00", maxArgs), true},
		{"too many", make([]string, maxArgs+1), "", false},
		{"maxRequest", []string{strings.Repeat("x", maxRequest-1)}, strings.Repeat("x", maxRequest-1) + "\x00", true},
		{"too long", []string{strings.Repeat("x", maxRequest)}, "", false},
		{"too long in sum", []string{strings.Repeat("x", maxRequest/2), strings.Repeat("y", maxRequest/2)}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeArgs(tt.args)
			if (err == nil) != tt.ok {
				t.Fatalf("encodeArgs: error %v, want ok %v", err, tt.ok)
			}
			if tt.ok && string(got) != tt.want {
				t.Errorf("encodeArgs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeArgs(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
		ok   bool
	}{
		{"empty", "", nil, true},
		{"one", "a\x00", []string{"a"}, true},
		{"one empty", "\x00", []string{""}, true},
		{"qmail-local", strings.Join(qmailLocalArgs, "\x00") + "\x00", qmailLocalArgs, true},
		{"unterminated", "a", nil, false},
		{"unterminated last", "a\x00b", nil, false},
		{"maxArgs", strings.Repeat("\x00", maxArgs), make([]string, maxArgs), true},
		{"too many", strings.Repeat("\x00", maxArgs+1), nil, false},
		{"too many at the end", strings.Repeat("a\x00", maxArgs) + "b\x00", nil, false},
		{"maxRequest", strings.Repeat("x", maxRequest-1) + "\x00", []string{strings.Repeat("x", maxRequest-1)}, true},
		{"too long", strings.Repeat("x", maxRequest) + "\x00", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := decodeArgs([]byte(tt.data))
			if ok != tt.ok {
				t.Fatalf("decodeArgs ok %v, want %v", ok, tt.ok)
			}
			if ok && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decodeArgs = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzDecodeArgs: any request a worker reads either is refused or is
// exactly what encodeArgs makes of the arguments it decodes to.
func FuzzDecodeArgs(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("\x00"))
	f.Add([]byte("a"))
	f.Add([]byte("a\x00b"))
	f.Add([]byte(strings.Join(qmailLocalArgs, "\x00") + "\x00"))
	f.Add([]byte(strings.Repeat("\x00", maxArgs+1)))
	f.Add(bytes.Repeat([]byte("x"), maxRequest+1))
	f.Fuzz(func(t *testing.T, data []byte) {
		args, ok := decodeArgs(data)
		if !ok {
			return
		}
		if len(args) > maxArgs {
			t.Fatalf("%d arguments accepted", len(args))
		}
		enc, err := encodeArgs(args)
		if err != nil {
			t.Fatalf("encodeArgs(decodeArgs(%q)): %v", data, err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("encodeArgs(decodeArgs(%q)) = %q", data, enc)
		}
	})
}

func TestPoolKey(t *testing.T) {
	base := func() *exec.Cmd {
		cmd := exec.Command("/var/qmail/bin/qmail-local", qmailLocalArgs...)
		cmd.Args[0] = "qmail-local"
		cmd.Dir = "/var/qmail"
		return cmd
	}
	cred := func(uid, gid uint32, groups ...uint32) *syscall.SysProcAttr {
		return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	}
	plain := key{path: "/var/qmail/bin/qmail-local", argv0: "qmail-local", dir: "/var/qmail"}
	withCred := plain
	withCred.cred, withCred.uid, withCred.gid, withCred.groups = true, 1001, 1002, "[]"
	withGroups := withCred
	withGroups.groups = "[7 8]"
	tests := []struct {
		name   string
		change func(*exec.Cmd)
		want   key
		ok     bool
	}{
		{"plain", func(*exec.Cmd) {}, plain, true},
		{"empty SysProcAttr", func(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{} }, plain, true},
		{"credentials", func(c *exec.Cmd) { c.SysProcAttr = cred(1001, 1002) }, withCred, true},
		{"credentials, empty groups", func(c *exec.Cmd) { c.SysProcAttr = cred(1001, 1002, []uint32{}...) }, withCred, true},
		{"credentials and groups", func(c *exec.Cmd) { c.SysProcAttr = cred(1001, 1002, 7, 8) }, withGroups, true},
		{"NoSetGroups", func(c *exec.Cmd) {
			c.SysProcAttr = cred(1001, 1002)
			c.SysProcAttr.Credential.NoSetGroups = true
		}, key{}, false},
		{"Env", func(c *exec.Cmd) { c.Env = []string{"PATH=/bin"} }, key{}, false},
		{"empty Env", func(c *exec.Cmd) { c.Env = []string{} }, key{}, false},
		{"Stdin", func(c *exec.Cmd) { c.Stdin = strings.NewReader("") }, key{}, false},
		{"Stdout", func(c *exec.Cmd) { c.Stdout = &bytes.Buffer{} }, key{}, false},
		{"Stderr", func(c *exec.Cmd) { c.Stderr = &bytes.Buffer{} }, key{}, false},
		{"ExtraFiles", func(c *exec.Cmd) { c.ExtraFiles = make([]*os.File, 1) }, key{}, false},
		{"no Args", func(c *exec.Cmd) { c.Args = nil }, key{}, false},
		{"Setpgid", func(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }, key{}, false},
		{"Setsid and credentials", func(c *exec.Cmd) {
			c.SysProcAttr = cred(1001, 1002)
			c.SysProcAttr.Setsid = true
		}, key{}, false},
		{"Chroot", func(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Chroot: "/var/qmail"} }, key{}, false},
		{"Pdeathsig", func(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }, key{}, false},
		{"Cloneflags", func(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS} }, key{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := base()
			tt.change(cmd)
			got, ok := poolKey(cmd)
			if ok != tt.ok {
				t.Fatalf("poolKey ok %v, want %v", ok, tt.ok)
			}
			if ok && got != tt.want {
				t.Errorf("poolKey = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Every fixed part of the process makes a different worker.
func TestPoolKeyDistinguishes(t *testing.T) {
	mk := func(path, argv0, dir string, attr *syscall.SysProcAttr) key {
		cmd := exec.Command(path, qmailLocalArgs...)
		cmd.Args[0], cmd.Dir, cmd.SysProcAttr = argv0, dir, attr
		k, ok := poolKey(cmd)
		if !ok {
			t.Fatalf("poolKey refused %s %s %s %+v", path, argv0, dir, attr)
		}
		return k
	}
	as := func(uid, gid uint32, groups ...uint32) *syscall.SysProcAttr {
		return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	}
	keys := []key{
		mk("/q/bin/qmail-local", "qmail-local", "/q", nil),
		mk("/r/bin/qmail-local", "qmail-local", "/q", nil),
		mk("/q/bin/qmail-local", "qmail-remote", "/q", nil),
		mk("/q/bin/qmail-local", "qmail-local", "/r", nil),
		mk("/q/bin/qmail-local", "qmail-local", "/q", as(0, 0)),
		mk("/q/bin/qmail-local", "qmail-local", "/q", as(1, 2)),
		mk("/q/bin/qmail-local", "qmail-local", "/q", as(2, 2)),
		mk("/q/bin/qmail-local", "qmail-local", "/q", as(1, 1)),
		mk("/q/bin/qmail-local", "qmail-local", "/q", as(1, 2, 3)),
		mk("/q/bin/qmail-local", "qmail-local", "/q", as(1, 2, 3, 4)),
	}
	seen := map[key]int{}
	for i, k := range keys {
		if j, dup := seen[k]; dup {
			t.Errorf("commands %d and %d share the key %+v", j, i, k)
		}
		seen[k] = i
	}
	// The same command again is the same worker.
	if a, b := mk("/q/bin/qmail-local", "qmail-local", "/q", as(1, 2, 3)), keys[8]; a != b {
		t.Errorf("same command, keys %+v and %+v", a, b)
	}
}
