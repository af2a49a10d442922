package remote

import (
	"io"
	"os"
)

// Program is the qmail-remote program's body, shared by a run of its own
// (cmd/qmail-remote) and by the deliveries of a worker (ServeWorker), so
// that both do exactly the same for the same arguments.
type Program struct {
	// Home is the qmail home (control.Home()).
	Home string
	// Pid feeds lock/tcpto's back-off (see Delivery.Pid); zero means
	// os.Getpid().
	Pid int
	// Conns, when not nil, keeps connections open between deliveries
	// (see ConnCache); nil is qmail's QUIT after every message.
	Conns *ConnCache
	// LocalAddrs, when not nil, keeps this host's addresses between
	// deliveries (a worker's); nil lists them for each.
	LocalAddrs *LocalAddrs
	// Settings, when not nil, keeps the control settings between
	// deliveries (a worker's); nil reads them for each.
	Settings *SettingsCache
}

// Deliver is one run of "qmail-remote host sender recip...": args are
// the arguments after argv[0], message is fd 0 and the reports go to
// out. qmail-remote always exits 0, whatever the outcome: there is no
// exit code to return.
func (p *Program) Deliver(args []string, message *os.File, out io.Writer) {
	if len(args) < 3 {
		Usage(out)
		return
	}
	// qmail-remote changes to its home before anything else; a worker
	// does it for every delivery, as every separate run would.
	if err := os.Chdir(p.Home); err != nil {
		NoHome(out)
		return
	}
	d := &Delivery{
		Home:       p.Home,
		Host:       args[0],
		Sender:     args[1],
		Recipients: args[2:],
		Message:    message,
		Size:       FileSize(message),
		Pid:        p.Pid,
		Conns:      p.Conns,
		LocalAddrs: p.LocalAddrs,
		Settings:   p.Settings,
	}
	Run(d, out)
}
