package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"
	mdns "github.com/miekg/dns"

	"github.com/goqmail/goqmail/internal/testenv"
	"github.com/goqmail/goqmail/internal/testsend"
	"github.com/goqmail/goqmail/internal/testsmtp"
)

// logText is how qmail-send's log shows a report: spaces as "_", line
// ends as "/".
func logText(report string) string {
	return regexp.QuoteMeta(strings.NewReplacer(" ", "_", "\n", "/").Replace(report))
}

// TestSendmailToMX: a message given to sendmail for a remote domain is
// queued, and qmail-send hands it to qmail-rspawn and qmail-remote,
// which finds the domain's exchanger in nsd and delivers to it on port
// 25.
func TestSendmailToMX(t *testing.T) {
	t.Parallel()
	testenv.Root(t)
	peer := startPeer(t, listenPort25(t), nil)
	_, dns := startRemoteDNS(t, peer.IP(), unusedPort25(t))
	home := testenv.NewHome(t, queuePrograms...)
	testenv.WriteControl(t, home, "dnsservers", dns.Addr()+"\n")
	attr := testsend.RunAs(t, home)
	m := startSendManager(t, home, attr)

	inject(t, home, attr, "To: bob@simple.e2e.test\nSubject: via MX\n\nhello over there\n",
		"sendmail", "-f", "alice@testhost.example", "bob@simple.e2e.test")
	m.WaitLines(`^starting delivery 1: msg \d+ to remote bob@simple.e2e.test$`, 1)
	m.WaitLines(`^delivery 1: success: `+logText(peer.IP()+" accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")+`$`, 1)
	m.WaitLines(`^end msg \d+$`, 1)
	m.Stop()
	testsend.QueueEmpty(t, home)

	got := peer.Received()
	if len(got) != 1 || got[0].From != "alice@testhost.example" || strings.Join(got[0].Rcpts, ",") != "bob@simple.e2e.test" {
		t.Fatalf("the peer got %+v", got)
	}
	if !strings.Contains(got[0].Data, "\r\nSubject: via MX\r\n") || !strings.HasSuffix(got[0].Data, "\r\n\r\nhello over there\r\n") {
		t.Fatalf("the peer got the message %q", got[0].Data)
	}
	queries := dns.Queries()
	checkQueryTypes(t, queries)
	if !asked(queries, "simple.e2e.test.", mdns.TypeMX, false) {
		t.Errorf("no MX query for simple.e2e.test: %q", queries)
	}
}

// routedHome is a home whose smtproutes send remote.e2e.test to the
// relay relay.e2e.test (looked up in nsd by address only) on the peer's
// port, with the programs to queue and deliver mail and a maildir for
// alice, the local sender.
func routedHome(t *testing.T, peer *testsmtp.Peer) (home, aliceMaildir string, attr *syscall.SysProcAttr, dns func() []string) {
	t.Helper()
	_, rec := startRemoteDNS(t, "127.0.0.1", "127.0.0.1")
	home = testenv.NewHome(t, queuePrograms...)
	testenv.WriteControl(t, home, "dnsservers", rec.Addr()+"\n")
	testenv.WriteControl(t, home, "smtproutes", fmt.Sprintf("remote.e2e.test:relay.e2e.test:%d\n", peer.Addr.Port))
	aliceMaildir = testsend.AliasMaildir(t, home, "alice", "alice")
	attr = testsend.RunAs(t, home)
	dns = func() []string {
		queries := rec.Queries()
		checkQueryTypes(t, queries)
		var out []string
		for _, q := range queries {
			out = append(out, q.String())
		}
		return out
	}
	return home, aliceMaildir, attr, dns
}

// checkRelayQueries: a relay is looked up by address, never by MX, and
// the recipient's domain is not looked up at all.
func checkRelayQueries(t *testing.T, queries []string) {
	t.Helper()
	if len(queries) == 0 {
		t.Fatal("the relay was not looked up in DNS")
	}
	for _, q := range queries {
		if q != "udp A relay.e2e.test." && q != "udp AAAA relay.e2e.test." {
			t.Errorf("unexpected query %q", q)
		}
	}
}

// TestDeferralThenRetry: the peer answers 451 after the message; qmail-send
// logs a deferral, retries at once on ALRM, and the second attempt
// delivers exactly one copy.
func TestDeferralThenRetry(t *testing.T) {
	t.Parallel()
	peer := startLoopbackPeer(t, func(p *testsmtp.Peer) { p.DeferMessages = 1 })
	home, _, attr, dns := routedHome(t, peer)
	m := startSendManager(t, home, attr)

	inject(t, home, attr, "To: carol@remote.e2e.test\nSubject: retry me\n\nsecond time lucky\n",
		"qmail-inject", "-falice@testhost.example", "carol@remote.e2e.test")
	m.WaitLines(`^starting delivery 1: msg \d+ to remote carol@remote.e2e.test$`, 1)
	m.WaitLines(`^delivery 1: deferral: `+logText("127.0.0.1 failed after I sent the message.\nRemote host said: 451 4.3.0 not now, try again\n")+`$`, 1)
	if n := len(peer.Received()); n != 0 {
		t.Fatalf("the peer kept %d messages it refused", n)
	}
	// ALRM: retry now rather than at the scheduled time.
	m.Signal(syscall.SIGALRM)
	m.WaitLines(`^starting delivery 2: msg \d+ to remote carol@remote.e2e.test$`, 1)
	m.WaitLines(`^delivery 2: success: `+logText("127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")+`$`, 1)
	m.WaitLines(`^end msg \d+$`, 1)
	m.Stop()
	testsend.QueueEmpty(t, home)

	got := peer.Received()
	if len(got) != 1 || peer.Deferrals() != 1 || got[0].From != "alice@testhost.example" || strings.Join(got[0].Rcpts, ",") != "carol@remote.e2e.test" ||
		!strings.HasSuffix(got[0].Data, "\r\nSubject: retry me\r\n\r\nsecond time lucky\r\n") {
		t.Fatalf("the peer got %+v after %d deferrals", got, peer.Deferrals())
	}
	checkRelayQueries(t, dns())
}

// TestRemoteFailureBounces: the peer refuses a recipient for good;
// qmail-send bounces the message to its sender, quoting the remote's
// reply in the bounce (QSBMF), while the other recipient is delivered.
func TestRemoteFailureBounces(t *testing.T) {
	t.Parallel()
	peer := startLoopbackPeer(t, func(p *testsmtp.Peer) {
		p.RejectRcpt["dave@remote.e2e.test"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	})
	home, alice, attr, dns := routedHome(t, peer)
	m := startSendManager(t, home, attr)

	inject(t, home, attr, "To: dave@remote.e2e.test, erin@remote.e2e.test\nSubject: doomed\n\nfor dave\n",
		"qmail-inject", "-falice@testhost.example", "dave@remote.e2e.test", "erin@remote.e2e.test")
	refusal := "127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 no such user here\nGiving up on 127.0.0.1.\n"
	m.WaitLines(`^delivery \d+: failure: `+logText(refusal)+`$`, 1)
	m.WaitLines(`^delivery \d+: success: `+logText("127.0.0.1 accepted message.\nRemote host said: 250 2.0.0 OK: queued\n")+`$`, 1)
	m.WaitLines(`^bounce msg \d+ qp \d+$`, 1)
	m.WaitLines(`^starting delivery \d+: msg \d+ to local alice@testhost.example$`, 1)
	m.WaitLines(`^delivery \d+: success: did_1\+0\+0/$`, 1)
	m.WaitLines(`^end msg \d+$`, 2)
	m.Stop()
	testsend.QueueEmpty(t, home)

	got := peer.Received()
	if len(got) != 1 || strings.Join(got[0].Rcpts, ",") != "erin@remote.e2e.test" {
		t.Fatalf("the peer got %+v", got)
	}
	bounces := testsend.MaildirMessages(t, alice)
	if len(bounces) != 1 {
		t.Fatalf("alice got %d messages", len(bounces))
	}
	bounce := bounces[0]
	for _, want := range []string{
		"Return-Path: <>\n",
		"\nFrom: MAILER-DAEMON@testhost.example\nTo: alice@testhost.example\nSubject: failure notice\n\n" +
			"Hi. This is the qmail-send program at testhost.example.\n" +
			"I'm afraid I wasn't able to deliver your message to the following addresses.\n" +
			"This is a permanent error; I've given up. Sorry it didn't work out.\n\n" +
			"<dave@remote.e2e.test>:\n" + refusal + "\n" +
			"--- Below this line is a copy of the message.\n\n" +
			"Return-Path: <alice@testhost.example>\n",
		"\nSubject: doomed\n\nfor dave\n",
	} {
		if !strings.Contains(bounce, want) {
			t.Fatalf("the bounce lacks %q:\n%s", want, bounce)
		}
	}
	if strings.Contains(bounce, "<erin@remote.e2e.test>:") {
		t.Fatalf("the bounce names the delivered recipient:\n%s", bounce)
	}
	checkRelayQueries(t, dns())
}
