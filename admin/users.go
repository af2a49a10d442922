// Package admin holds what qmailctl does to a qmail home: creating it,
// checking it and driving its services.
package admin

import (
	"fmt"
	"os/user"
	"strconv"

	"github.com/goqmail/goqmail/queue"
)

// Ids are the numeric ids of qmail's users and groups (conf-users,
// conf-groups), as they exist on a privileged installation.
type Ids struct {
	Alias, Qmaild, Qmaill, Qmailp, Qmailq, Qmailr, Qmails int
	Qmail, Nofiles                                        int // gids
}

// userNames are qmail's users in conf-users order (root, which owns the
// binaries, is not looked up).
var userNames = []string{"alias", "qmaild", "qmaill", "qmailp", "qmailq", "qmailr", "qmails"}

// LookupIds finds qmail's users and groups in the system databases. It
// fails, naming what is missing, when any of them does not exist.
func LookupIds() (*Ids, error) {
	uids := make([]int, len(userNames))
	var missing []string
	for i, name := range userNames {
		u, err := user.Lookup(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		uids[i], _ = strconv.Atoi(u.Uid)
	}
	gids := make([]int, 2)
	for i, name := range []string{"qmail", "nofiles"} {
		g, err := user.LookupGroup(name)
		if err != nil {
			missing = append(missing, "group "+name)
			continue
		}
		gids[i], _ = strconv.Atoi(g.Gid)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("qmail users or groups missing: %v", missing)
	}
	return &Ids{
		Alias: uids[0], Qmaild: uids[1], Qmaill: uids[2], Qmailp: uids[3],
		Qmailq: uids[4], Qmailr: uids[5], Qmails: uids[6],
		Qmail: gids[0], Nofiles: gids[1],
	}, nil
}

// QueueOwners are the owners the queue gets on a privileged installation.
func (ids *Ids) QueueOwners() *queue.Owners {
	return &queue.Owners{Qmailq: ids.Qmailq, Qmails: ids.Qmails, Qmailr: ids.Qmailr, Qmail: ids.Qmail}
}
