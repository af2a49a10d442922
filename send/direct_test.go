package send

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestReadDirect(t *testing.T) {
	rw := NewRewriter("example.org", []string{"example.org"}, nil, nil)
	tests := []struct {
		name string
		todo string
		ok   bool
		want directTodo
	}{
		{"local", "u7\x00p9\x00Fa@example.net\x00Tuser@example.org\x00", true,
			directTodo{uid: 7, pid: 9, sender: "a@example.net", recip: directRecipient{chanLocal, "user@example.org"}}},
		{"remote", "u0\x00p1\x00F\x00Tx@remote.example\x00", true,
			directTodo{pid: 1, recip: directRecipient{chanRemote, "x@remote.example"}}},
		{"two recipients", "u0\x00p1\x00Fa@b\x00Tuser@example.org\x00Tx@remote.example\x00", false, directTodo{}},
		{"no recipient", "u0\x00p1\x00Fa@b\x00", false, directTodo{}},
		{"no sender", "u0\x00p1\x00Tuser@example.org\x00", false, directTodo{}},
		{"two senders", "Fa@b\x00Fc@d\x00Tuser@example.org\x00", false, directTodo{}},
		{"unknown record", "u0\x00p1\x00Fa@b\x00Xzz\x00Tuser@example.org\x00", false, directTodo{}},
		{"unterminated", "u0\x00p1\x00Fa@b\x00Tuser@example.org", false, directTodo{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := readDirect(strings.NewReader(tt.todo), rw)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tt.ok, got)
			}
			if ok && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// directSender is a Sender over a temporary queue holding message id
// for one local recipient in todo/, with spawners and qmail-clean
// recorded in strings.
type directSender struct {
	*Sender
	spawn, clean strings.Builder
}

func newDirectSender(t *testing.T, id uint64, todo string) *directSender {
	t.Helper()
	now := time.Unix(1_800_000_000, 0)
	ds := &directSender{Sender: newScheduleSender(t, now)}
	s := ds.Sender
	s.cfg.Clean = &ds.clean
	s.events = make(chan event, 64)
	s.set.rw = NewRewriter("example.org", []string{"example.org"}, nil, nil)
	for c := 0; c < numChannels; c++ {
		s.cfg.Spawn[c] = &ds.spawn
		s.slots[c] = make([]*delivery, 2)
		s.alive[c] = true
		s.set.concurrency[c] = 2
	}
	s.nextDelID = 1
	if err := os.WriteFile(s.path("mess", id), []byte("Subject: x\n\nbody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path("todo", id), []byte(todo), 0o644); err != nil {
		t.Fatal(err)
	}
	return ds
}

// split scans todo/ and commits the one split that follows.
func (ds *directSender) split(t *testing.T) {
	t.Helper()
	ds.scanTodo()
	ev := <-ds.events // no deadline: the split always answers
	if ev.kind != evSplit {
		t.Fatalf("event %d, want evSplit", ev.kind)
	}
	ds.handle(ev)
}

func (ds *directSender) logText() string { return ds.log.w.(*strings.Builder).String() }

func (ds *directSender) exists(dir string, id uint64) bool { return exists(ds.path(dir, id)) }

// TestDirectSuccess: a one-recipient message is delivered from todo/N
// without info/N or a channel file; at the end qmail-clean removes
// todo/N first and mess/N only once that is done.
func TestDirectSuccess(t *testing.T) {
	const id = 200
	ds := newDirectSender(t, id, "u1\x00p2\x00Fsender@example.net\x00Tuser@example.org\x00")
	ds.split(t)
	m := ds.msgs[id]
	if m == nil || m.direct == nil || ds.clean.Len() != 0 {
		t.Fatalf("message %+v, qmail-clean got %q: want a direct message, no cleanup", m, ds.clean.String())
	}
	ds.startDeliveries()
	if ds.spawn.String() != "\x0016/200\x00sender@example.net\x00user@example.org\x00" {
		t.Fatalf("spawner got %q", ds.spawn.String())
	}
	for _, dir := range []string{"info", "local", "remote"} {
		if ds.exists(dir, id) {
			t.Errorf("%s/%d written for a direct message", dir, id)
		}
	}
	// A scan while it is delivered leaves todo/200 alone.
	ds.scanTodo()
	if ds.splitting[id] {
		t.Fatal("direct message split again")
	}

	ds.finishDelivery(chanLocal, 0, "Kdid_1+0+0/")
	if ds.clean.String() != "todo/200\x00" {
		t.Fatalf("qmail-clean got %q, want todo/200 alone", ds.clean.String())
	}
	// Until todo/200 is gone, the delivery counts as running: a crash
	// now repeats it, and the log must not say it succeeded; a stop
	// waits. Its slot is free for the next delivery already.
	if strings.Contains(ds.logText(), "success") {
		t.Fatalf("success handled before todo/200 was removed:\n%s", ds.logText())
	}
	if ds.used[chanLocal] != 0 {
		t.Errorf("the slot stays taken while qmail-clean works (slots used %d)", ds.used[chanLocal])
	}
	ds.exitASAP = true
	if ds.canExit() {
		t.Error("qmail-send would exit before the direct delivery's report is acted on")
	}
	ds.exitASAP = false
	ds.cleaned(true)
	if ds.clean.String() != "todo/200\x00foop/200\x00" {
		t.Fatalf("qmail-clean got %q, want todo/200 then foop/200", ds.clean.String())
	}
	ds.cleaned(true)
	want := "new msg 200\ninfo msg 200: bytes 17 from <sender@example.net> qp 2 uid 1\n" +
		"starting delivery 1: msg 200 to local user@example.org\nstatus: local 1/2 remote 0/2\n" +
		"delivery 1: success: did_1+0+0/\nstatus: local 0/2 remote 0/2\nend msg 200\n"
	if got := ds.logText(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
	if len(ds.msgs) != 0 || len(ds.splitting) != 0 || ds.directCount != [numChannels]int{} {
		t.Errorf("left behind: msgs %v, splitting %v, directCount %v", ds.msgs, ds.splitting, ds.directCount)
	}
}

// TestDirectDeferral: a deferred direct delivery first gets the files
// preprocessing would have written, durable, then todo/N goes, and only
// then is the deferral recorded: the recipient waits for its retry as in
// any message.
func TestDirectDeferral(t *testing.T) {
	const id = 201
	ds := newDirectSender(t, id, "u1\x00p2\x00Fsender@example.net\x00Tfar@remote.example\x00")
	ds.split(t)
	ds.startDeliveries()
	ds.finishDelivery(chanRemote, 0, "Zconnection refused\n")
	info, err := os.ReadFile(ds.path("info", id))
	if err != nil || string(info) != "Fsender@example.net\x00" {
		t.Fatalf("info/%d: %q, %v", id, info, err)
	}
	remote, err := os.ReadFile(ds.path("remote", id))
	if err != nil || string(remote) != "Tfar@remote.example\x00" {
		t.Fatalf("remote/%d: %q, %v", id, remote, err)
	}
	if ds.exists("local", id) {
		t.Errorf("local/%d written", id)
	}
	if ds.clean.String() != "todo/201\x00" {
		t.Fatalf("qmail-clean got %q", ds.clean.String())
	}
	if strings.Contains(ds.logText(), "deferral") {
		t.Fatalf("deferral logged before todo/201 was removed:\n%s", ds.logText())
	}
	// Until qmail-clean answers, todo/201 is not preprocessed again.
	ds.scanTodo()
	select {
	case ev := <-ds.events:
		t.Fatalf("split while todo/201 was being removed (event %d)", ev.kind)
	case <-time.After(100 * time.Millisecond):
	}
	ds.cleaned(true)
	m := ds.msgs[id]
	if m == nil || m.direct != nil || !m.pending[chanRemote] || !m.next[chanRemote].After(ds.now()) || m.due[chanRemote] == 0 {
		t.Fatalf("message %+v: want an ordinary one waiting for its retry", m)
	}
	if len(ds.splitting) != 0 || ds.directCount != [numChannels]int{} {
		t.Errorf("splitting %v, directCount %v", ds.splitting, ds.directCount)
	}
	if !strings.Contains(ds.logText(), "delivery 1: deferral: connection_refused/\n") {
		t.Errorf("log:\n%s", ds.logText())
	}
}

// TestDirectFailure: a failed direct delivery is recorded as in any
// message, bounce/N and the channel file's 'D', once todo/N is gone.
func TestDirectFailure(t *testing.T) {
	const id = 202
	ds := newDirectSender(t, id, "u1\x00p2\x00Fsender@example.net\x00Tuser@example.org\x00")
	ds.split(t)
	ds.startDeliveries()
	ds.finishDelivery(chanLocal, 0, "DSorry, no mailbox here by that name. (#5.1.1)\n")
	if ds.exists("bounce", id) || !ds.exists("local", id) || ds.clean.String() != "todo/202\x00" {
		t.Fatalf("before qmail-clean's answer: bounce %v, local %v, qmail-clean %q; want no bounce, the channel file, todo/202 asked",
			ds.exists("bounce", id), ds.exists("local", id), ds.clean.String())
	}
	ds.cleaned(true)
	bounce, err := os.ReadFile(ds.path("bounce", id))
	if err != nil || !strings.Contains(string(bounce), "<user@example.org>:\nSorry, no mailbox here by that name.") {
		t.Fatalf("bounce/%d: %q, %v", id, bounce, err)
	}
	if !ds.exists("info", id) || ds.exists("local", id) {
		t.Errorf("info/%d should exist (%v), local/%d be done and gone (%v)", id, ds.exists("info", id), id, ds.exists("local", id))
	}
	if !strings.Contains(ds.logText(), "delivery 1: failure: Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/\n") {
		t.Errorf("log:\n%s", ds.logText())
	}
}

// TestDirectTodoStays: when qmail-clean cannot remove todo/N after a
// success, the message will be delivered again, as qmail warns when it
// cannot mark a delivery, and mess/N stays for it.
func TestDirectTodoStays(t *testing.T) {
	const id = 204
	ds := newDirectSender(t, id, "u1\x00p2\x00Fsender@example.net\x00Tuser@example.org\x00")
	ds.split(t)
	ds.startDeliveries()
	ds.finishDelivery(chanLocal, 0, "Kdid_1+0+0/")
	ds.cleaned(false)
	if !strings.Contains(ds.logText(), "warning: trouble marking todo/204; message will be delivered twice!\n") {
		t.Errorf("log:\n%s", ds.logText())
	}
	if ds.clean.String() != "todo/204\x00" {
		t.Errorf("qmail-clean got %q: mess/204 must stay", ds.clean.String())
	}
	if len(ds.msgs) != 0 || len(ds.splitting) != 0 {
		t.Errorf("msgs %v, splitting %v: the next scan must preprocess todo/204 again", ds.msgs, ds.splitting)
	}
}

// TestDirectOnlyWithRoom: with the channel's direct messages at their
// bound, a message is preprocessed as in qmail.
func TestDirectOnlyWithRoom(t *testing.T) {
	const id = 203
	ds := newDirectSender(t, id, "u1\x00p2\x00Fsender@example.net\x00Tuser@example.org\x00")
	ds.directCount[chanLocal] = directPerSlot * len(ds.slots[chanLocal])
	ds.split(t)
	if !ds.exists("info", id) || !ds.exists("local", id) || ds.clean.String() != "todo/203\x00" {
		t.Fatalf("not preprocessed: info %v, local %v, qmail-clean %q", ds.exists("info", id), ds.exists("local", id), ds.clean.String())
	}
}

// TestScanResumesAfterDirectCleanup: a scan of todo/ that stopped
// because too many messages were in transit (a direct delivery's todo/N
// waiting for qmail-clean counts) is due again as soon as one leaves:
// the message it left behind has no trigger of its own any more. (At
// the end of a benchmark run, 31 messages sat in todo/ until the next
// 25-minute scan.)
func TestScanResumesAfterDirectCleanup(t *testing.T) {
	const id, later = 300, 301
	ds := newDirectSender(t, id, "u1\x00p2\x00Fsender@example.net\x00Tuser@example.org\x00")
	ds.split(t)
	ds.startDeliveries()
	ds.finishDelivery(chanLocal, 0, "Kdid_1+0+0/")
	if !ds.splitting[id] || ds.clean.String() != "todo/300\x00" {
		t.Fatalf("splitting %v, qmail-clean got %q: want todo/300 waiting", ds.splitting, ds.clean.String())
	}
	// Others in transit fill the rest of the room.
	for other := uint64(1); len(ds.splitting) < preprocessParallel; other++ {
		ds.splitting[other] = true
	}
	if err := os.WriteFile(ds.path("mess", later), []byte("Subject: y\n\nbody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ds.path("todo", later), []byte("u1\x00p2\x00Fsender@example.net\x00Tuser@example.org\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds.scanTodo()
	if ds.splitting[later] || !ds.todoBehind {
		t.Fatalf("splitting[%d] %v, todoBehind %v: want the scan to stop for lack of room", later, ds.splitting[later], ds.todoBehind)
	}
	// qmail-clean removes todo/300 and answers.
	if err := os.Remove(ds.path("todo", id)); err != nil {
		t.Fatal(err)
	}
	ds.cleaned(true)
	if ds.nextTodo.After(ds.now()) {
		t.Fatalf("next scan of todo/ at %v, now %v: want it due at once", ds.nextTodo, ds.now())
	}
	ds.scanTodo()
	if !ds.splitting[later] {
		t.Errorf("todo/%d not taken by the scan after the cleanup", later)
	}
	<-ds.events // the split's result
}
