package dns

import (
	"container/list"
	"sync"
	"time"
)

// maxCacheTTL caps how long anything is cached, whatever a server says.
const maxCacheTTL = 24 * time.Hour

// DefaultCacheSize is the number of answers a Resolver keeps by default.
const DefaultCacheSize = 4096

// cacheKey identifies a query: a canonical (lower-case, absolute) name and
// a type.
type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	key     cacheKey
	value   rrset
	expires time.Time
}

// cache holds answers until their TTL runs out, at most max of them,
// dropping the least recently used first. It is safe for concurrent use.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[cacheKey]*list.Element
	order   *list.List // front: most recently used
}

func newCache(max int) *cache {
	return &cache{max: max, entries: map[cacheKey]*list.Element{}, order: list.New()}
}

// get returns the live entry for key at time now.
func (c *cache) get(key cacheKey, now time.Time) (rrset, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return rrset{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.entries, key)
		return rrset{}, false
	}
	c.order.MoveToFront(el)
	return e.value, true
}

// put stores value for its TTL, counted from now; a zero TTL stores
// nothing.
func (c *cache) put(key cacheKey, value rrset, now time.Time) {
	if value.ttl == 0 || c.max <= 0 {
		return
	}
	ttl := min(time.Duration(value.ttl)*time.Second, maxCacheTTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.value, e.expires = value, now.Add(ttl)
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, value: value, expires: now.Add(ttl)})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

// len is the number of entries, live or not yet noticed as expired.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
