package pop3_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

// nobody is the account the fake checkpassword runs qmail-pop3d as when
// the tests run as root.
const nobody = 65534

// world makes a directory tree that an unprivileged user can traverse:
// the test's temporary directory and the programs qmail-popup runs, copied
// out of the (private) build directory.
type world struct {
	dir, popup, pop3d string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{dir: dir}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"qmail-popup", &w.popup}, {"qmail-pop3d", &w.pop3d}} {
		b, err := os.ReadFile(testenv.Program(t, p.name))
		if err != nil {
			t.Fatal(err)
		}
		*p.dst = filepath.Join(bin, p.name)
		if err := os.WriteFile(*p.dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// maildir makes home/Maildir with the messages (name -> contents, all an
// hour old), owned by uid/gid when running as root.
func maildir(t *testing.T, home string, uid, gid int, msgs map[string]string) string {
	t.Helper()
	md := filepath.Join(home, "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	i := 0
	names := make([]string, 0, len(msgs))
	for n := range msgs {
		names = append(names, n)
	}
	// Oldest first in the order of the names' unique part.
	sort.Slice(names, func(i, j int) bool { return filepath.Base(names[i]) < filepath.Base(names[j]) })
	for _, n := range names {
		p := filepath.Join(md, n)
		if err := os.WriteFile(p, []byte(msgs[n]), 0o600); err != nil {
			t.Fatal(err)
		}
		when := old.Add(time.Duration(i) * time.Minute) // order by name
		i++
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
		os.Chmod(home, 0o700)
	}
	return md
}

// listFiles lists the files of a maildir's new/ and cur/.
func listFiles(t *testing.T, md string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

// tcpserve runs "tcpserver -R -H 127.0.0.1 0 argv..." and returns its
// port.
func tcpserve(t *testing.T, env []string, argv ...string) string {
	t.Helper()
	tcpserver := testenv.Tool(t, "tcpserver", "ucspi-tcp")
	cmd := exec.Command(tcpserver, append([]string{"-1", "-R", "-H", "-l", "pop.example", "127.0.0.1", "0"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	return testenv.TCPServer(t, cmd)
}

// session is what testdata/pop3client.py reports.
type session struct {
	Welcome string   `json:"welcome"`
	Capa    []string `json:"capa"`
	STLS    string   `json:"stls"`
	User    string   `json:"user"`
	Login   string   `json:"login"`
	Stat    []int    `json:"stat"`
	List    []string `json:"list"`
	UIDL    []string `json:"uidl"`
	Retr    []string `json:"retr"`
	Dele    string   `json:"dele"`
	Quit    string   `json:"quit"`
	Error   string   `json:"error"`
}

func poplib(t *testing.T, port, mode, user, password string) session {
	t.Helper()
	return poplibAt(t, "127.0.0.1", port, mode, user, password)
}

// poplibAt runs testdata/pop3client.py against host (an IP address).
func poplibAt(t *testing.T, host, port, mode, user, password string) session {
	t.Helper()
	python := testenv.Tool(t, "python3", "python3")
	out, err := exec.Command(python, filepath.Join("testdata", "pop3client.py"), port, mode, user, password, host).CombinedOutput()
	if err != nil {
		t.Fatalf("pop3client.py: %v\n%s", err, out)
	}
	var s session
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("pop3client.py output %q: %v", out, err)
	}
	return s
}

var twoMessages = map[string]string{
	"new/1000.first.host":      "Subject: first\n\n.starts with a dot\n",
	"cur/2000.second.host:2,S": "Subject: second\n\nbody\n",
}

// checkSession verifies a poplib session over twoMessages.
func checkSession(t *testing.T, s session) {
	t.Helper()
	if s.Error != "" {
		t.Fatalf("session failed: %s", s.Error)
	}
	if !strings.HasPrefix(s.Welcome, "+OK <") || !strings.HasSuffix(s.Welcome, "@pop.example>") {
		t.Errorf("greeting %q", s.Welcome)
	}
	if s.Login != "+OK " || fmt.Sprint(s.Stat) != "[2 57]" || s.Dele != "+OK " || s.Quit != "+OK " {
		t.Errorf("replies: login %q stat %v dele %q quit %q", s.Login, s.Stat, s.Dele, s.Quit)
	}
	if strings.Join(s.List, ",") != "1 35,2 22" || strings.Join(s.UIDL, ",") != "1 1000.first.host,2 2000.second.host" {
		t.Errorf("list %q uidl %q", s.List, s.UIDL)
	}
	// poplib undoes the dot-stuffing; qmail's extra empty line stays.
	if strings.Join(s.Retr, "|") != "Subject: first||.starts with a dot|" {
		t.Errorf("retr %q", s.Retr)
	}
}

// TestPoplibAndMpopWithCheckpw logs in with Debian's checkpw as a real
// system user, under tcpserver, with Python's poplib and with mpop.
func TestPoplibAndMpopWithCheckpw(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("checkpw needs a system user: run as root")
	}
	checkpw := testenv.Tool(t, "checkpw", "checkpw")
	mpop := testenv.Tool(t, "mpop", "mpop")
	testenv.Tool(t, "useradd", "passwd")
	w := newWorld(t)
	home := filepath.Join(w.dir, "home")
	user := fmt.Sprintf("gqpop%d", os.Getpid()%1000000)
	exec.Command("userdel", user).Run() // left over from a killed run
	if out, err := exec.Command("useradd", "-M", "-N", "-g", "nogroup", "-d", home, "-s", "/bin/sh", user).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", user).Run() })
	uidOut, err := exec.Command("id", "-u", user).Output()
	if err != nil {
		t.Fatal(err)
	}
	var uid int
	fmt.Sscan(string(uidOut), &uid)
	msgs := map[string]string{".password": "pop-secret\n"}
	for k, v := range twoMessages {
		msgs[k] = v
	}
	msgs["new/3000.third.host"] = "Subject: third\n\nfor mpop\n"
	md := maildir(t, home, uid, nobody, msgs)
	port := tcpserve(t, nil, w.popup, "pop.example", checkpw, w.pop3d, "Maildir")

	if s := poplib(t, port, "plain", user, "wrong"); s.Error != "-ERR authorization failed" {
		t.Errorf("wrong password: %+v", s)
	}
	s := poplib(t, port, "plain", user, "pop-secret")
	if s.Error != "" {
		t.Fatalf("session failed: %s", s.Error)
	}
	if fmt.Sprint(s.Stat) != "[3 82]" || s.Retr[0] != "Subject: first" || s.Quit != "+OK " {
		t.Errorf("poplib session %+v", s)
	}
	if got := strings.Join(listFiles(t, md), " "); got != "cur/2000.second.host:2,S cur/3000.third.host:2," {
		t.Errorf("maildir after poplib: %s", got)
	}

	mbox := filepath.Join(w.dir, "mbox")
	pwfile := filepath.Join(w.dir, "pw")
	os.WriteFile(pwfile, []byte("pop-secret\n"), 0o600)
	cmd := exec.Command(mpop, "-C", "/dev/null", "--host=127.0.0.1", "--port="+port, "--user="+user,
		"--passwordeval=cat "+pwfile, "--auth=user", "--tls=off", "--delivery=mbox,"+mbox,
		"--keep=off", "--only-new=off", "--uidls-file="+filepath.Join(w.dir, "uidls"))
	cmd.Env = append(os.Environ(), "HOME="+w.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mpop: %v\n%s", err, out)
	}
	b, err := os.ReadFile(mbox)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Subject: second\n\nbody\n") || !strings.Contains(string(b), "Subject: third\n\nfor mpop\n") {
		t.Errorf("mpop's mbox:\n%s", b)
	}
	if got := listFiles(t, md); len(got) != 0 {
		t.Errorf("maildir after mpop: %q", got)
	}
}

// fakeChain starts qmail-popup with testdata/checkpassword.py under
// tcpserver, for a maildir owned by nobody when running as root.
func fakeChain(t *testing.T, env ...string) (port, md string, w *world, qmailHome string) {
	t.Helper()
	w, md, qmailHome, chainEnv, chain := listenerChain(t)
	// tcpserver runs qmail-popup with the chain's arguments after "--".
	port = tcpserve(t, append(env, chainEnv...), append([]string{w.popup}, chain[1:]...)...)
	return port, md, w, qmailHome
}

func TestPoplibFakeCheckpassword(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"plain", "apop"} {
		t.Run(mode, func(t *testing.T) {
			port, md, _, _ := fakeChain(t)
			if s := poplib(t, port, mode, "bob", "wrong"); s.Error != "-ERR authorization failed" {
				t.Errorf("wrong password: %+v", s)
			}
			checkSession(t, poplib(t, port, mode, "bob", "s3cret"))
			if got := strings.Join(listFiles(t, md), " "); got != "cur/2000.second.host:2,S" {
				t.Errorf("maildir after the session: %s", got)
			}
		})
	}
}

// writeCert puts a self-signed certificate and its key in
// control/servercert.pem.
func writeCert(t *testing.T, qmailHome string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pop.example"}, DNSNames: []string{"pop.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...)
	if err := os.WriteFile(filepath.Join(qmailHome, "control", "servercert.pem"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPoplibTLS(t *testing.T) {
	t.Parallel()
	t.Run("STLS", func(t *testing.T) {
		port, md, _, qh := fakeChain(t)
		writeCert(t, qh)
		s := poplib(t, port, "stls", "bob", "s3cret")
		checkSession(t, s)
		if strings.Join(s.Capa, ",") != "STLS,TOP,UIDL,USER" || !strings.HasPrefix(s.STLS, "+OK") {
			t.Errorf("capa %q stls %q", s.Capa, s.STLS)
		}
		if got := strings.Join(listFiles(t, md), " "); got != "cur/2000.second.host:2,S" {
			t.Errorf("maildir after the session: %s", got)
		}
	})
	t.Run("POP3S", func(t *testing.T) {
		port, _, _, qh := fakeChain(t, "POP3S=1")
		writeCert(t, qh)
		checkSession(t, poplib(t, port, "pop3s", "bob", "s3cret"))
	})
	t.Run("no certificate: stock replies", func(t *testing.T) {
		port, _, _, _ := fakeChain(t)
		if s := poplib(t, port, "stls", "bob", "s3cret"); s.Error != "-ERR CAPA not supported by server" {
			t.Errorf("CAPA without a certificate: %+v", s)
		}
	})
}

// TestPop3dRefusesRoot runs qmail-pop3d as root.
func TestPop3dRefusesRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	md := maildir(t, t.TempDir(), 0, 0, twoMessages)
	cmd := exec.Command(testenv.Program(t, "qmail-pop3d"), md)
	cmd.Stdin = strings.NewReader("STAT\r\nQUIT\r\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || stdout.Len() != 0 || stderr.String() != "qmail-pop3d invoked as uid 0, terminating\n" {
		t.Errorf("as root: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}

// TestPopupTimeout: with POP3TIMEOUT=1 an idle client is dropped after
// the greeting (the test ends instead of hanging).
func TestPopupTimeout(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(testenv.Program(t, "qmail-popup"), "pop.example", "/bin/false")
	cmd.Env = append(os.Environ(), "POP3TIMEOUT=1")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd.Stdin = r
	var out bytes.Buffer
	cmd.Stdout = &out
	err = cmd.Run()
	r.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(out.String(), "+OK <") || strings.Count(out.String(), "\r\n") != 1 {
		t.Errorf("idle session: %v, output %q", err, out.String())
	}
}

// TestPopupUsage runs qmail-popup without its arguments.
func TestPopupUsage(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(testenv.Program(t, "qmail-popup"), "host").Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || string(out) != "-ERR usage: popup hostname subprogram\r\n" {
		t.Errorf("usage: %v %q", err, out)
	}
}
