package send

import (
	"strings"

	"github.com/goqmail/goqmail/internal/ascii"
)

// Rewriter is qmail-send's recipient rewriting (qmail-send(8), §3.5 of
// the checklist): envnoathost, percenthack, locals and virtualdomains.
type Rewriter struct {
	EnvNoAtHost string
	Locals      map[string]bool   // lowercased domains
	PercentHack map[string]bool   // lowercased domains
	VirtualDoms map[string]string // lowercased key -> prepend
}

// NewRewriter builds the lookup tables from control file lines. As in
// qmail's constmap, keys match case-insensitively, a virtualdomains line
// without a colon is ignored, and a later duplicate key wins.
func NewRewriter(envnoathost string, locals, percenthack, virtualdomains []string) *Rewriter {
	rw := &Rewriter{
		EnvNoAtHost: envnoathost,
		Locals:      map[string]bool{},
		PercentHack: map[string]bool{},
		VirtualDoms: map[string]string{},
	}
	for _, l := range locals {
		rw.Locals[ascii.Lower(l)] = true
	}
	for _, l := range percenthack {
		rw.PercentHack[ascii.Lower(l)] = true
	}
	for _, l := range virtualdomains {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			rw.VirtualDoms[ascii.Lower(k)] = v
		}
	}
	return rw
}

// Rewrite returns the delivery address of a recipient and whether it is
// delivered locally.
func (rw *Rewriter) Rewrite(recip string) (addr string, local bool) {
	addr = recip
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		addr += "@" + rw.EnvNoAtHost
		i = len(recip)
	}
	for rw.PercentHack[ascii.Lower(addr[i+1:])] {
		j := strings.LastIndexByte(addr[:i], '%')
		if j < 0 {
			break
		}
		addr = addr[:j] + "@" + addr[j+1:i]
		i = j
	}
	at := strings.LastIndexByte(addr, '@')
	if rw.Locals[ascii.Lower(addr[at+1:])] {
		return addr, true
	}
	lower := ascii.Lower(addr)
	for i := 0; i <= len(addr); i++ {
		if i == 0 || i == at+1 || i == len(addr) || (i > at && addr[i] == '.') {
			prepend, ok := rw.VirtualDoms[lower[i:]]
			if !ok {
				continue
			}
			if prepend == "" {
				break
			}
			return prepend + "-" + addr, true
		}
	}
	return addr, false
}
