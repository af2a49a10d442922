package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/queue"
)

const usageText = "qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty"

// Args are qmail-local's arguments.
type Args struct {
	DoIt            bool // false with -n: print the instructions instead
	User            string
	Home            string
	Local           string
	Dash            string
	Ext             string
	Host            string
	Sender          string
	DefaultDelivery string // "aliasempty": used when there is no .qmail
}

// ParseArgs reads qmail-local's command line (without the program name):
// options -n and -N in getopt style, then exactly eight arguments, the
// home directory absolute.
func ParseArgs(argv []string) (Args, error) {
	a := Args{DoIt: true}
	usage := hard(usageText)
	i := 0
	for ; i < len(argv); i++ {
		arg := argv[i]
		if arg == "--" {
			i++
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			break
		}
		for _, c := range arg[1:] {
			switch c {
			case 'n':
				a.DoIt = false
			case 'N':
				a.DoIt = true
			default:
				return a, usage
			}
		}
	}
	rest := argv[i:]
	if len(rest) != 8 {
		return a, usage
	}
	a.User, a.Home, a.Local, a.Dash = rest[0], rest[1], rest[2], rest[3]
	a.Ext, a.Host, a.Sender, a.DefaultDelivery = rest[4], rest[5], rest[6], rest[7]
	if !strings.HasPrefix(a.Home, "/") {
		return a, usage
	}
	return a, nil
}

// Delivery is one run of qmail-local.
type Delivery struct {
	Args
	QmailHome string   // where the queue program is found (control.Home)
	Message   *os.File // fd 0: must be seekable
	Stdout    io.Writer
	Stderr    io.Writer
	Environ   []string // the inherited environment
	Hostname  string   // for maildir names
	// Namer names maildir deliveries; nil makes one for this process's
	// pid. A worker shares one among its deliveries.
	Namer *MaildirNamer
	// Exit ends the delivery with a code from another goroutine (the
	// maildir alarm) while the delivery itself is stuck; nil is
	// os.Exit. A worker abandons the delivery instead.
	Exit func(code int)
	// Buffer buffers maildir writes; nil makes one. A worker hands
	// them from delivery to delivery.
	Buffer *bufio.Writer

	env       []string // Environ plus qmail-command(8)'s variables
	dtline    string
	rpline    string
	ufline    string
	newSender string
	maildir   maildirDelivery
}

// Main runs qmail-local with the process's arguments and descriptors and
// returns its exit code: 0 delivered, 100 hard failure, 111 soft failure.
// Failures are reported on stderr in qmail's words; a failing program's
// failure gives 100 or 111 without a text of qmail-local's own.
func Main(argv []string, qmailHome string) int {
	syscall.Umask(0o077)
	host, _ := os.Hostname()
	d := &Delivery{
		QmailHome: qmailHome,
		Message:   os.Stdin,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Environ:   os.Environ(),
		Hostname:  host,
	}
	args, err := ParseArgs(argv)
	if err == nil {
		d.Args = args
		err = d.Run()
	}
	return d.report(err)
}

// report prints a failure as qmail-local does (its text and a newline on
// stderr) and gives the exit code.
func (d *Delivery) report(err error) int {
	if err == nil {
		return 0
	}
	var f *Failure
	if !errors.As(err, &f) {
		f = tempf("%v. (#4.3.0)", err)
	}
	if f.Text != "" {
		fmt.Fprintln(d.Stderr, f.Text)
	}
	return f.Code
}

// Run performs the delivery. qmail-local changes to the home directory
// first, and the .qmail files, the relative paths in them and the
// programs they run are relative to it. A worker runs deliveries for
// several homes at once, so Run leaves the working directory alone: it
// resolves those paths against the home directory (inHome), and programs
// start there.
func (d *Delivery) Run() error {
	if err := d.checkHome(); err != nil {
		return err
	}
	d.dtline = DTLine(d.Local, d.Host)
	if d.DoIt {
		if err := d.checkLoop(); err != nil {
			return err
		}
	}
	d.rpline = RPLine(d.Sender)
	d.ufline = UFLine(d.Sender, time.Now())

	dq, err := Find(d.Home, d.Dash, d.Ext)
	if err != nil {
		return err
	}
	if dq == nil && d.Dash != "" {
		return hard("Sorry, no mailbox here by that name. (#5.1.1)")
	}
	if d.newSender, err = d.forwardSender(); err != nil {
		return err
	}
	d.setEnv(dq)

	cmds, forwardOnly := "", false
	if dq != nil {
		cmds, forwardOnly = dq.Contents, dq.ForwardOnly
	}
	if cmds == "" {
		cmds, forwardOnly = d.DefaultDelivery, false
	}
	return d.follow(ParseDotQmail(cmds), forwardOnly)
}

// checkHome fails as qmail-local's chdir to the home directory would,
// and refuses a home directory others may write to, and one with the
// sticky bit, which users set while editing their .qmail files.
func (d *Delivery) checkHome() error {
	// "home/." resolves only where chdir(home) would succeed: an
	// existing directory we may search.
	st, err := os.Stat(d.inHome("."))
	if err != nil {
		return tempf("Unable to switch to %s: %s. (#4.3.0)", d.Home, ErrText(err))
	}
	if st.Mode().Perm()&patrn != 0 {
		return temp("Uh-oh: home directory is writable. (#4.7.0)")
	}
	if st.Mode()&os.ModeSticky != 0 {
		if d.DoIt {
			return temp("Home directory is sticky: user is editing his .qmail file. (#4.2.1)")
		}
		fmt.Fprintln(d.Stderr, "Warning: home directory is sticky.")
	}
	return nil
}

// rewind puts fd 0 back at the start of the message. qmail-local reads
// the message once per instruction, so it must be seekable.
func (d *Delivery) rewind() error {
	if _, err := d.Message.Seek(0, io.SeekStart); err != nil {
		return temp("Unable to rewind message. (#4.3.0)")
	}
	return nil
}

// checkLoop bounces a message whose header already has our exact
// Delivered-To line: it has been here before.
func (d *Delivery) checkLoop() error {
	if err := d.rewind(); err != nil {
		return err
	}
	r := bufio.NewReaderSize(d.Message, 4096)
	for {
		line, complete, err := ReadLineCapped(r, len(d.dtline)+1)
		if err != nil {
			return tempf("Unable to read message: %s. (#4.3.0)", ErrText(err))
		}
		if !complete || len(line) <= 1 {
			return nil // end of message or of the header
		}
		if line == d.dtline {
			return hard("This message is looping: it already has my Delivered-To line. (#5.4.6)")
		}
	}
}

// ReadLineCapped reads one line, keeping at most max bytes of it (the
// rest is consumed and dropped). complete is false when input ended
// before a newline.
func ReadLineCapped(r *bufio.Reader, max int) (line string, complete bool, err error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if room := max - len(b); room > 0 {
			b = append(b, chunk[:min(room, len(chunk))]...)
		}
		switch {
		case err == nil:
			return string(b), true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return string(b), false, nil
		default:
			return "", false, err
		}
	}
}

// forwardSender is NEWSENDER: the envelope sender for forwarded copies.
// A .qmail<dash><ext>-owner file makes it local-owner@host, and an
// additional -owner-default file the VERP form local-owner-@host-@[];
// bounces (sender "" or "#@[]") keep their sender.
func (d *Delivery) forwardSender() (string, error) {
	if d.Sender == "" || d.Sender == "#@[]" {
		return d.Sender, nil
	}
	base := ".qmail" + d.Dash + SafeExt(d.Ext)
	owner, err := ownerFileExists(d.Home, base+"-owner")
	if err != nil || !owner {
		return d.Sender, err
	}
	verp, err := ownerFileExists(d.Home, base+"-owner-default")
	if err != nil {
		return "", err
	}
	if verp {
		return d.Local + "-owner-@" + d.Host + "-@[]", nil
	}
	return d.Local + "-owner@" + d.Host, nil
}

// setEnv builds the environment of qmail-command(8). The values are the
// envelope's, unquoted: programs must treat them as hostile.
func (d *Delivery) setEnv(dq *DotQmail) {
	ext2, ext3, ext4 := SplitExt(d.Ext)
	host2, host3, host4 := SplitHost(d.Host)
	vars := [][2]string{
		{"HOST", d.Host},
		{"HOME", d.Home},
		{"USER", d.User},
		{"LOCAL", d.Local},
		{"RECIPIENT", d.Local + "@" + d.Host},
		{"DTLINE", d.dtline},
		{"SENDER", d.Sender},
		{"RPLINE", d.rpline},
		{"UFLINE", d.ufline},
		{"EXT", d.Ext},
		{"EXT2", ext2},
		{"EXT3", ext3},
		{"EXT4", ext4},
		{"HOST2", host2},
		{"HOST3", host3},
		{"HOST4", host4},
	}
	if dq != nil && dq.HasDefault {
		vars = append(vars, [2]string{"DEFAULT", dq.Default})
	}
	vars = append(vars, [2]string{"NEWSENDER", d.newSender})
	d.env = mergeEnv(d.Environ, vars)
}

// mergeEnv sets vars in env, replacing earlier values. A NUL cannot be
// passed in an environment: C's qmail cuts the value there, and so do we.
func mergeEnv(env []string, vars [][2]string) []string {
	set := make(map[string]bool, len(vars))
	for _, kv := range vars {
		set[kv[0]] = true
	}
	out := make([]string, 0, len(env)+len(vars))
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if !set[name] {
			out = append(out, e)
		}
	}
	for _, kv := range vars {
		v := kv[1]
		if i := strings.IndexByte(v, 0); i >= 0 {
			v = v[:i]
		}
		out = append(out, kv[0]+"="+v)
	}
	return out
}

// follow carries out the instructions in order. Files, maildirs and
// programs happen at once and the first failure stops everything;
// forwards are collected and queued together at the end, so a failure
// anywhere means nothing is forwarded.
func (d *Delivery) follow(lines []Line, forwardOnly bool) error {
	var files, programs, nforward int
	var forwards []string
	for i, l := range lines {
		stop := false
		switch l.Kind {
		case Blank:
			if i == 0 {
				return temp("Uh-oh: first line of .qmail file is blank. (#4.2.1)")
			}
		case Comment, Ignored:
		case ListOnly:
			forwardOnly = true
		case Maildir, Mbox:
			files++
			if forwardOnly {
				return temp("Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)")
			}
			if err := d.deliverFile(l); err != nil {
				return err
			}
		case Program:
			programs++
			if forwardOnly {
				return temp("Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)")
			}
			if !d.DoIt {
				d.say("program ", l.Arg)
				break
			}
			var err error
			if stop, err = d.runProgram(l.Arg); err != nil {
				return err
			}
		case Forward:
			nforward++
			if d.DoIt {
				forwards = append(forwards, l.Arg)
			} else {
				d.say("forward ", l.Arg)
			}
		}
		if stop {
			break
		}
	}
	qp := 0
	if len(forwards) > 0 {
		var err error
		if qp, err = d.forward(forwards); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.Stdout, "did %d+%d+%d\n", files, nforward, programs)
	if qp != 0 {
		fmt.Fprintf(d.Stdout, "qp %d\n", qp)
	}
	return nil
}

func (d *Delivery) say(what, arg string) {
	fmt.Fprintf(d.Stdout, "%s%s\n", what, arg)
}

// deliverFile appends to an mbox or writes into a maildir.
func (d *Delivery) deliverFile(l Line) error {
	if !d.DoIt {
		if l.Kind == Maildir {
			d.say("maildir ", l.Arg)
		} else {
			d.say("mbox ", l.Arg)
		}
		return nil
	}
	if err := d.rewind(); err != nil {
		return err
	}
	if l.Kind == Mbox {
		return AppendMbox(d.inHome(l.Arg), d.Message, d.ufline, d.rpline, d.dtline, MboxLockWait)
	}
	if d.maildir.namer == nil {
		if d.Namer == nil {
			d.Namer = NewMaildirNamer(os.Getpid(), d.Hostname)
		}
		d.maildir = maildirDelivery{
			namer: d.Namer,
			now:   time.Now,
			sleep: time.Sleep,
			buf:   d.Buffer,
		}
	}
	// qmail's alarm: a delivery stuck for a day (a hung NFS server)
	// gives up, removing its tmp file.
	var tmpName string
	d.maildir.started = func(tmp string) { tmpName = tmp }
	timer := time.AfterFunc(MaildirTimeout, func() {
		if tmpName != "" {
			os.Remove(tmpName)
		}
		exit := d.Exit
		if exit == nil {
			exit = os.Exit
		}
		exit(d.report(temp("Timeout on maildir delivery. (#4.3.0)")))
	})
	defer timer.Stop()
	return d.maildir.deliver(d.inHome(l.Arg), d.Message, d.rpline, d.dtline)
}

// inHome is the path that names path from the home directory.
func (d *Delivery) inHome(path string) string { return inDir(d.Home, path) }

// runProgram runs "/bin/sh -c command" in the home directory with the
// message on fd 0 and our stdout and stderr, and maps its exit code:
// 0 success, 99 success and stop, 100 and sendmail's permanent codes
// (64, 65, 70, 76, 77, 78, 112) hard, anything else soft.
func (d *Delivery) runProgram(command string) (stop bool, err error) {
	if err := d.rewind(); err != nil {
		return false, err
	}
	cmd := &exec.Cmd{
		Path:   "/bin/sh",
		Args:   []string{"/bin/sh", "-c", command},
		Dir:    d.Home,
		Env:    d.env,
		Stdin:  d.Message,
		Stdout: d.Stdout,
		Stderr: d.Stderr,
	}
	if err := cmd.Start(); err != nil {
		return false, tempf("Unable to run /bin/sh: %s. (#4.3.0)", ErrText(err))
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return false, temp("Aack, child crashed. (#4.3.0)")
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return false, temp("Aack, child crashed. (#4.3.0)")
	}
	switch cmd.ProcessState.ExitCode() {
	case 0:
		return false, nil
	case 99:
		return true, nil
	case 100, 64, 65, 70, 76, 77, 78, 112:
		return false, &Failure{Code: 100}
	default:
		return false, &Failure{Code: 111}
	}
}

// forward queues one copy of the message, DTLINE first, for all the
// forward addresses, with NEWSENDER as envelope sender. It returns the
// queue program's pid (qmail's "qp").
func (d *Delivery) forward(recipients []string) (int, error) {
	if err := d.rewind(); err != nil {
		return 0, err
	}
	qq, err := queue.Open(d.QmailHome)
	if err != nil {
		var qerr *queue.Error
		if errors.As(err, &qerr) {
			return 0, forwardFailure(qerr)
		}
		return 0, tempf("Unable to fork: %s. (#4.3.0)", ErrText(err))
	}
	qp := qq.Pid()
	qq.WriteString(d.dtline)
	if _, err := copyMessage(qq, d.Message); err != nil {
		qq.Fail(err)
	}
	if err := qq.Close(d.newSender, recipients); err != nil {
		var qerr *queue.Error
		if errors.As(err, &qerr) {
			return 0, forwardFailure(qerr)
		}
		return 0, tempf("Unable to forward message: %v.", err)
	}
	return qp, nil
}

func forwardFailure(qerr *queue.Error) *Failure {
	code := 111
	if qerr.Permanent {
		code = 100
	}
	return &Failure{Code: code, Text: "Unable to forward message: " + qerr.Text + "."}
}
