package tcpserver

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/goqmail/goqmail/control/cdb"
)

// Rule is the outcome of a tcprules lookup: deny the connection, or allow
// it with extra environment variables.
type Rule struct {
	Deny bool
	Env  []string // "NAME=value"
}

// RuleKeys lists the keys tcpserver tries in a tcprules cdb for a client,
// most specific first (ucspi-tcp's rules.c, without DNS and IDENT: the
// standalone listener looks up neither): the address itself, then each
// prefix ending in '.' (IPv4) or ':' (IPv6), then the empty default key.
func RuleKeys(ip string) []string {
	keys := []string{ip}
	sep := byte('.')
	if strings.Contains(ip, ":") {
		sep = ':'
	}
	for n := len(ip) - 1; n > 0; n-- {
		if ip[n-1] == sep {
			keys = append(keys, ip[:n])
		}
	}
	return append(keys, "")
}

// ParseRule decodes a tcprules cdb value as tcpserver does: NUL-ended
// entries, "D" denies, "+NAME=value" sets a variable; other entries are
// ignored, as is a last entry without its NUL.
func ParseRule(data []byte) Rule {
	var r Rule
	for {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			return r
		}
		entry := data[:i]
		data = data[i+1:]
		if len(entry) == 0 {
			continue
		}
		switch entry[0] {
		case 'D':
			r.Deny = true
		case '+':
			if name, value, ok := strings.Cut(string(entry[1:]), "="); ok {
				r.Env = append(r.Env, name+"="+value)
			}
		}
	}
}

// LookupRule finds the rule for ip in the tcprules cdb at path. The
// first key present decides; no key at all means allow.
func LookupRule(path, ip string) (Rule, error) {
	db, err := cdb.Open(path)
	if err != nil {
		return Rule{}, err
	}
	defer db.Close()
	for _, k := range RuleKeys(ip) {
		v, ok, err := db.Get([]byte(k))
		if err != nil {
			return Rule{}, fmt.Errorf("%s: %w", path, err)
		}
		if ok {
			return ParseRule(v), nil
		}
	}
	return Rule{}, nil
}
