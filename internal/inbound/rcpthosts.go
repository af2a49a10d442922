package inbound

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/goqmail/goqmail/control"
	"github.com/goqmail/goqmail/control/cdb"
)

// RcptHosts is control/rcpthosts plus control/morercpthosts.cdb: the
// domains this host accepts mail for from clients that may not relay.
type RcptHosts struct {
	hosts map[string]bool
	more  *cdb.Reader // nil when morercpthosts.cdb is missing
}

// LoadRcptHosts reads rcpthosts and opens morercpthosts.cdb. It returns
// nil, nil when rcpthosts is missing: then every domain is allowed, as in
// qmail (morercpthosts is consulted only when rcpthosts exists).
func LoadRcptHosts(files *control.Files) (*RcptHosts, error) {
	lines, ok, err := files.List("rcpthosts")
	if err != nil || !ok {
		return nil, err
	}
	rh := &RcptHosts{hosts: make(map[string]bool, len(lines))}
	for _, l := range lines {
		rh.hosts[strings.ToLower(l)] = true
	}
	more, err := cdb.Open(files.Path("morercpthosts.cdb"))
	switch {
	case err == nil:
		rh.more = more
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("control/morercpthosts.cdb: %w", err)
	}
	return rh, nil
}

// Close releases morercpthosts.cdb.
func (rh *RcptHosts) Close() error {
	if rh == nil || rh.more == nil {
		return nil
	}
	return rh.more.Close()
}

// Allowed is rcpthosts.c's test: an address without '@' is allowed;
// otherwise its domain, lowercased, must be listed whole or by one of its
// ".suffix" forms, in rcpthosts or else in morercpthosts.cdb.
func (rh *RcptHosts) Allowed(addr string) (bool, error) {
	if rh == nil {
		return true, nil
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return true, nil
	}
	host := strings.ToLower(addr[at+1:])
	keys := domainKeys(host)
	for _, k := range keys {
		if rh.hosts[k] {
			return true, nil
		}
	}
	if rh.more != nil {
		for _, k := range keys {
			_, ok, err := rh.more.Get([]byte(k))
			if err != nil {
				return false, fmt.Errorf("control/morercpthosts.cdb: %w", err)
			}
			if ok {
				return true, nil
			}
		}
	}
	return false, nil
}

// domainKeys lists the lookup keys of a host: the host itself, then every
// suffix that starts at a '.'.
func domainKeys(host string) []string {
	keys := []string{host}
	for j := 1; j < len(host); j++ {
		if host[j] == '.' {
			keys = append(keys, host[j:])
		}
	}
	return keys
}
