package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goqmail/goqmail/internal/testenv"
)

// debianPackages fetches .deb files from the host's Debian archive with
// apt-get download, once, into the cache beside the debootstrap root.
func debianPackages(t *testing.T, names ...string) []string {
	t.Helper()
	aptGet := testenv.Tool(t, "apt-get", "apt")
	cacheDir := os.Getenv("GOQMAIL_DEBROOT_CACHE")
	if cacheDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cacheDir = filepath.Join(d, "goqmail")
	}
	dir := filepath.Join(cacheDir, "debs-"+hostSuite())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var debs []string
	for _, name := range names {
		found, _ := filepath.Glob(filepath.Join(dir, name+"_*.deb"))
		if len(found) == 0 {
			download := func() ([]byte, error) {
				cmd := exec.Command(aptGet, "download", name)
				cmd.Dir = dir
				return cmd.CombinedOutput()
			}
			if _, err := download(); err != nil {
				// The package lists may be missing or stale.
				if out, err := exec.Command(aptGet, "update").CombinedOutput(); err != nil {
					t.Fatalf("apt-get update: %v\n%s", err, tail(out))
				}
				if out, err := download(); err != nil {
					t.Fatalf("apt-get download %s: %v\n%s", name, err, out)
				}
			}
			found, _ = filepath.Glob(filepath.Join(dir, name+"_*.deb"))
			if len(found) == 0 {
				t.Fatalf("apt-get download %s left no .deb in %s", name, dir)
			}
		}
		debs = append(debs, found[0])
	}
	return debs
}

// TestDebWithRunit installs runit, ucspi-tcp and checkpw from Debian
// into a clean root, then the package, whose postinst must register the
// services with runit and compile /etc/tcp.smtp. runsvdir then runs them
// as on a real server: a message sent over SMTP to qmail-smtpd on port 25
// (in a network namespace of the test's own) and one sent with sendmail
// are delivered to a Maildir, and svlogd writes qmail-send's log. Then
// docs/smtp-auth.md's steps add a submission service on port 587 where
// AUTH with checkpw is required, and a reinstall (an upgrade) restarts
// the services without registering anything twice.
func TestDebWithRunit(t *testing.T) {
	testenv.Root(t)
	testenv.Tool(t, "unshare", "util-linux")
	t.Parallel()
	root := debianRoot(t)
	debs := debianPackages(t, "runit-helper", "sysuser-helper", "runit", "ucspi-tcp", "checkpw")
	debs = append(debs, buildTestDeb(t))
	if err := os.Mkdir(filepath.Join(root, "tmp/debs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var inChrootNames []string
	for _, deb := range debs {
		b, err := os.ReadFile(deb)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(deb)
		if err := os.WriteFile(filepath.Join(root, "tmp/debs", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		inChrootNames = append(inChrootNames, "/tmp/debs/"+name)
	}
	goqmailDeb := inChrootNames[len(inChrootNames)-1]
	others := strings.Join(inChrootNames[:len(inChrootNames)-1], " ")

	out, err := inChrootNet(t, root, `
hostname mail.goqmail.test
echo '127.0.1.1 mail.goqmail.test mail' >>/etc/hosts
dpkg -i `+others+` >/dev/null
dpkg -i `+goqmailDeb+`
echo "service dir: $(ls /etc/service | tr '\n' ' ')"
readlink /etc/service/qmail-send
[ -f /etc/tcp.smtp.cdb ] && echo "rules compiled"
useradd --create-home alice
/var/qmail/bin/maildirmake /home/alice/Maildir
chown -R alice: /home/alice/Maildir
runsvdir -P /etc/service >/dev/null 2>&1 &

i=0
until (exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 300 ]; then
		echo "qmail-smtpd never listened:"; cat /var/log/qmail/smtpd/current
		sv status /etc/service/*
		exit 1
	fi
	sleep 0.1
done
exec 3<>/dev/tcp/127.0.0.1/25
say() { printf '%s\r\n' "$1" >&3; echo "C: $1"; }
hear() { IFS= read -r line <&3; echo "S: ${line%$'\r'}"; }
hear
say 'HELO client.test'; hear
say 'MAIL FROM:<bob@client.test>'; hear
say 'RCPT TO:<alice@mail.goqmail.test>'; hear
say 'DATA'; hear
printf 'Subject: over smtp\r\n\r\nhello over smtp\r\n.\r\n' >&3; hear
say 'QUIT'; hear
exec 3<&-

printf 'To: alice\nSubject: with sendmail\n\nhello from sendmail\n' | /usr/sbin/sendmail -t
i=0
until [ "$(ls /home/alice/Maildir/new | wc -l)" -ge 2 ]; do
	i=$((i + 1))
	if [ $i -gt 600 ]; then
		echo "not delivered; qmail-send's log:"; cat /var/log/qmail/current
		exit 1
	fi
	sleep 0.1
done
echo "delivered"
sv status /etc/service/qmail-send /etc/service/qmail-smtpd

# docs/smtp-auth.md, step by step: checkpw may start as root for group
# nofiles, the user's password in ~/Maildir/.password, a submission
# service on port 587 written by qmailctl services install.
dpkg-statoverride --update --add root nofiles 4750 /usr/bin/checkpw
printf '%s\n' 'the password' > /home/alice/Maildir/.password
chown alice: /home/alice/Maildir/.password
chmod 600 /home/alice/Maildir/.password
/var/qmail/bin/qmailctl services install --for runit --dir /tmp/sv --smtpd standalone \
	--submission-port 587 --checkpassword "/usr/bin/checkpw /bin/true" >/dev/null
mv /tmp/sv/qmail-submission /etc/sv/
ln -s /etc/sv/qmail-submission /etc/service/
i=0
until (exec 3<>/dev/tcp/127.0.0.1/587) 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 300 ]; then
		echo "the submission service never listened:"; cat /var/log/qmail/submission/current
		exit 1
	fi
	sleep 0.1
done
exec 3<>/dev/tcp/127.0.0.1/587
hear
say 'EHLO client.test'
until [ "${line#250 }" != "$line" ]; do hear; done
say 'MAIL FROM:<alice@mail.goqmail.test>'; hear
say "AUTH PLAIN $(printf '\0alice\0wrong password' | base64 -w0)"; hear
say "AUTH PLAIN $(printf '\0alice\0the password' | base64 -w0)"; hear
say 'MAIL FROM:<alice@mail.goqmail.test>'; hear
say 'RCPT TO:<someone@elsewhere.example>'; hear
say 'QUIT'; hear
exec 3<&-

# An upgrade restarts the registered services and links nothing new.
dpkg -i `+goqmailDeb+` >/dev/null
echo "after upgrade: $(ls /etc/service | tr '\n' ' ')"
printf 'To: alice\nSubject: after the upgrade\n\nhello again\n' | /usr/sbin/sendmail -t
i=0
until [ "$(ls /home/alice/Maildir/new | wc -l)" -ge 3 ]; do
	i=$((i + 1))
	if [ $i -gt 600 ]; then
		echo "not delivered after the upgrade; qmail-send's log:"; cat /var/log/qmail/current
		exit 1
	fi
	sleep 0.1
done
echo "delivered after upgrade"
`)
	if err != nil {
		t.Fatalf("runit scenario: %v\n%s", err, out)
	}
	t.Logf("runit scenario:\n%s", out)
	for _, want := range []string{
		" qmail-send ", // linked into /etc/service by postinst
		" qmail-smtpd ",
		"\n/etc/sv/qmail-send\n",
		"rules compiled",
		"S: 220 mail.goqmail.test ESMTP",
		"S: 250 ok",
		"S: 354 go ahead",
		"S: 221 mail.goqmail.test",
		"delivered",
		"run: /etc/service/qmail-send:",
		"run: /etc/service/qmail-smtpd:",
		"S: 250-AUTH LOGIN PLAIN",
		"C: MAIL FROM:<alice@mail.goqmail.test>\nS: 530 Authorization required (#5.7.1)",
		"S: 535 authentication failed (#5.7.1)",
		"S: 235 ok, go ahead (#2.0.0)",
		"C: RCPT TO:<someone@elsewhere.example>\nS: 250 ok", // relaying once logged in
		"after upgrade: default-syslog qmail-send qmail-smtpd qmail-submission \n",
		"delivered after upgrade",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	msgs, _ := filepath.Glob(filepath.Join(root, "home/alice/Maildir/new/*"))
	var all []byte
	for _, m := range msgs {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	for _, want := range []string{"\nhello over smtp\n", "Received: from unknown (HELO client.test) (127.0.0.1)", "\nhello from sendmail\n", "\nhello again\n"} {
		if !bytes.Contains(all, []byte(want)) {
			t.Errorf("delivered messages lack %q:\n%s", want, all)
		}
	}
	log, err := os.ReadFile(filepath.Join(root, "var/log/qmail/current"))
	if err != nil {
		t.Fatalf("svlogd's log of qmail-send: %v", err)
	}
	if !bytes.Contains(log, []byte(" new msg ")) || !bytes.Contains(log, []byte(" delivery 1: success: ")) {
		t.Errorf("qmail-send's log lacks its lines:\n%s", log)
	}
}
