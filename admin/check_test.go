package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goqmail/goqmail/internal/testenv"
)

// fakeIP is the unit-test resolver: names in it resolve, others fail.
type fakeIP map[string]bool

func (f fakeIP) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if f[host] {
		return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
	}
	return nil, errors.New("no such host")
}

var checkNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func certPEM(t *testing.T, notAfter time.Time, withKey bool) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: testenv.Me},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if withKey {
		kb, _ := x509.MarshalPKCS8PrivateKey(key)
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})...)
	}
	return out
}

// checkHome is a sound home: Check finds no error and no warning in it.
func checkHome(t *testing.T) string {
	home := testenv.NewHome(t)
	testenv.WriteControl(t, home, "defaultdelivery", "./Maildir/\n")
	return home
}

func findings(t *testing.T, home string, ids *Ids, resolver IPResolver) []Finding {
	t.Helper()
	return Check(context.Background(), CheckOptions{Home: home, Ids: ids, Resolver: resolver, Now: checkNow})
}

func TestCheckSoundHome(t *testing.T) {
	t.Parallel()
	home := checkHome(t)
	os.WriteFile(filepath.Join(home, "control", "servercert.pem"), certPEM(t, checkNow.Add(200*24*time.Hour), true), 0o644)
	for _, f := range findings(t, home, nil, fakeIP{testenv.Me: true}) {
		if f.Severity != Info {
			t.Errorf("sound home: %v", f)
		}
	}
}

func TestCheckFindings(t *testing.T) {
	t.Parallel()
	old := checkNow.Add(-time.Hour)
	tests := []struct {
		name     string
		provoke  func(t *testing.T, home string)
		severity Severity
		subject  string
		text     string
	}{
		{"open relay", func(t *testing.T, h string) { os.Remove(filepath.Join(h, "control", "rcpthosts")) },
			Error, "control/rcpthosts", "open relay"},
		{"no me", func(t *testing.T, h string) { os.Remove(filepath.Join(h, "control", "me")) },
			Error, "control/me", "missing"},
		{"me does not resolve", func(t *testing.T, h string) { testenv.WriteControl(t, h, "me", "nowhere.invalid\n") },
			Warning, "control/me", "nowhere.invalid does not resolve"},
		{"no defaultdelivery", func(t *testing.T, h string) { os.Remove(filepath.Join(h, "control", "defaultdelivery")) },
			Warning, "control/defaultdelivery", "missing"},
		{"cert expiring", func(t *testing.T, h string) {
			os.WriteFile(filepath.Join(h, "control", "servercert.pem"), certPEM(t, checkNow.Add(10*24*time.Hour), true), 0o644)
		}, Warning, "control/servercert.pem", "in 10 days"},
		{"cert expired", func(t *testing.T, h string) {
			os.WriteFile(filepath.Join(h, "control", "servercert.pem"), certPEM(t, checkNow.Add(-time.Hour), true), 0o644)
		}, Error, "control/servercert.pem", "expired"},
		{"cert without key", func(t *testing.T, h string) {
			os.WriteFile(filepath.Join(h, "control", "servercert.pem"), certPEM(t, checkNow.Add(400*24*time.Hour), false), 0o644)
		}, Error, "control/servercert.pem", "no private key"},
		{"cert garbage", func(t *testing.T, h string) { testenv.WriteControl(t, h, "servercert.pem", "not a pem\n") },
			Error, "control/servercert.pem", "no certificate"},
		{"cert unreadable", func(t *testing.T, h string) { os.Mkdir(filepath.Join(h, "control", "servercert.pem"), 0o755) },
			Error, "control/servercert.pem", "unreadable"},
		{"users/cdb stale", func(t *testing.T, h string) {
			os.WriteFile(filepath.Join(h, "users", "cdb"), nil, 0o644)
			os.Chtimes(filepath.Join(h, "users", "cdb"), old, old)
			os.WriteFile(filepath.Join(h, "users", "assign"), []byte(".\n"), 0o644)
		}, Error, "users/cdb", "older than assign"},
		{"users/cdb missing", func(t *testing.T, h string) {
			os.WriteFile(filepath.Join(h, "users", "assign"), []byte(".\n"), 0o644)
		}, Error, "users/cdb", "missing"},
		{"morercpthosts.cdb stale", func(t *testing.T, h string) {
			testenv.WriteControl(t, h, "morercpthosts.cdb", "")
			os.Chtimes(filepath.Join(h, "control", "morercpthosts.cdb"), old, old)
			testenv.WriteControl(t, h, "morercpthosts", "x.example\n")
		}, Error, "control/morercpthosts.cdb", "older than morercpthosts"},
		{"queue mode", func(t *testing.T, h string) { os.Chmod(filepath.Join(h, "queue", "info", "3"), 0o755) },
			Error, "queue/info/3", "mode drwxr-xr-x, qmail's is drwx------"},
		{"queue split", func(t *testing.T, h string) { os.Mkdir(filepath.Join(h, "queue", "mess", "23"), 0o750) },
			Error, "queue/mess", "another split"},
		{"queue subdirectory missing", func(t *testing.T, h string) { os.Remove(filepath.Join(h, "queue", "remote", "22")) },
			Error, "queue/remote/22", "not qmail's queue layout"},
		{"trigger not a fifo", func(t *testing.T, h string) {
			p := filepath.Join(h, "queue", "lock", "trigger")
			os.Remove(p)
			os.WriteFile(p, nil, 0o622)
		}, Error, "queue/lock/trigger", "mode"},
		{"no queue", func(t *testing.T, h string) { os.RemoveAll(filepath.Join(h, "queue")) },
			Error, "queue", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := checkHome(t)
			tt.provoke(t, home)
			var found bool
			for _, f := range findings(t, home, nil, fakeIP{testenv.Me: true}) {
				if f.Subject == tt.subject && f.Severity == tt.severity && strings.Contains(f.Text, tt.text) {
					found = true
				} else if f.Severity != Info {
					t.Errorf("unexpected finding: %v", f)
				}
			}
			if !found {
				t.Errorf("no %v finding on %s with %q", tt.severity, tt.subject, tt.text)
			}
		})
	}
}

// TestCheckOwners checks owners against qmail's users: the queue belongs
// to "qmailq" (the caller here) but info/ and friends do not belong to
// "qmails".
func TestCheckOwners(t *testing.T) {
	t.Parallel()
	home := checkHome(t)
	fi, _ := os.Stat(filepath.Join(home, "queue"))
	st := fi.Sys().(*syscall.Stat_t)
	me, gid := int(st.Uid), int(st.Gid)
	ids := &Ids{Qmailq: me, Qmails: me + 1, Qmailr: me, Qmail: gid}
	var infoOwner, binQueue bool
	for _, f := range findings(t, home, ids, nil) {
		switch {
		case f.Subject == "queue/info/0" && strings.Contains(f.Text, "qmails:qmail"):
			infoOwner = true
		case f.Subject == "bin/qmail-queue":
			binQueue = true
		case f.Severity == Error && !strings.Contains(f.Text, "qmails:qmail"):
			t.Errorf("unexpected: %v", f)
		}
	}
	if !infoOwner || !binQueue {
		t.Errorf("owner findings: info %v, bin/qmail-queue %v", infoOwner, binQueue)
	}
}

func TestQmailctlCheckExitCode(t *testing.T) {
	t.Parallel()
	home := checkHome(t)
	run := func() (string, int) {
		cmd := exec.Command(testenv.Program(t, "qmailctl"), "check", "--no-dns", "--home", home)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := run(); code != 0 || !strings.Contains(out, "0 errors, 0 warnings.") {
		t.Errorf("sound home: exit %d\n%s", code, out)
	}
	os.Remove(filepath.Join(home, "control", "rcpthosts"))
	out, code := run()
	if code != 1 || !strings.Contains(out, "error: control/rcpthosts: missing: qmail-smtpd accepts mail for any domain from anyone (an open relay)\n") {
		t.Errorf("open relay: exit %d\n%s", code, out)
	}
}
