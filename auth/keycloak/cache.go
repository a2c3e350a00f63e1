package keycloak

import (
	"container/list"
	"crypto/sha256"
	"hash"
	"sync"
	"time"

	"github.com/pkgroute/pkgroute/auth"
)

// tokenCache is a bounded LRU of verified tokens keyed by their SHA-256.
type tokenCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front = most recent; values are *cacheEntry
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	key   [32]byte
	p     *auth.Principal
	until time.Time // exp plus leeway
}

// hasher is a reusable SHA-256 state with a copy buffer, so that hashing a
// token string does not allocate.
type hasher struct {
	h   hash.Hash
	buf [512]byte
}

var hashers = sync.Pool{New: func() any { return &hasher{h: sha256.New()} }}

// tokenKey returns the SHA-256 of token.
func tokenKey(token string) (k [32]byte) {
	hs := hashers.Get().(*hasher)
	hs.h.Reset()
	for len(token) > 0 {
		n := copy(hs.buf[:], token)
		hs.h.Write(hs.buf[:n])
		token = token[n:]
	}
	hs.h.Sum(k[:0])
	hashers.Put(hs)
	return k
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, ll: list.New(), items: make(map[[32]byte]*list.Element, max)}
}

func (c *tokenCache) get(token string, now time.Time) *auth.Principal {
	k := tokenKey(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.until) {
		c.ll.Remove(el)
		delete(c.items, k)
		return nil
	}
	c.ll.MoveToFront(el)
	return e.p
}

func (c *tokenCache) put(token string, p *auth.Principal, until time.Time) {
	k := tokenKey(token)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, p: p, until: until})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func (c *tokenCache) purge() {
	c.mu.Lock()
	c.ll.Init()
	clear(c.items)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
