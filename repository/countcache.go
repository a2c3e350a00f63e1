package repository

import (
	"context"
	"sync"
	"time"
)

// CountCache keeps the totals of offset pages for a while, so that paging
// through a large table does not count it on every page. Keys are a table
// name and the text of the count query (its filters included). Repositories
// invalidate a table's entries after each of their writes, or, for writes
// in a Transactor's transaction, after its commit; inside a transaction
// they count without the cache, neither reading nor storing totals. Totals
// from a cache may lag writes made elsewhere (another process, raw SQL) by
// up to the cache's lifetime.
type CountCache interface {
	// Count returns a cached total, if one is fresh.
	Count(ctx context.Context, table, query string) (n int, ok bool)
	// StoreCount remembers a total.
	StoreCount(ctx context.Context, table, query string, n int)
	// Invalidate forgets every total of table.
	Invalidate(ctx context.Context, table string)
}

// MemoryCountCache is an in-process CountCache whose entries live for a
// fixed TTL. It is safe for concurrent use and needs no goroutine: expired
// entries are dropped when read, and a table's entries are dropped whole
// when it holds MaxEntries of them.
type MemoryCountCache struct {
	ttl        time.Duration
	maxEntries int
	now        func() time.Time

	mu     sync.Mutex
	tables map[string]map[string]countEntry
}

type countEntry struct {
	n       int
	expires time.Time
}

// MemoryCountCacheConfig configures a MemoryCountCache.
type MemoryCountCacheConfig struct {
	// TTL is how long a total stays fresh. Default 5 s.
	TTL time.Duration
	// MaxEntries bounds the entries kept per table. Default 1024.
	MaxEntries int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// NewMemoryCountCache returns an empty MemoryCountCache.
func NewMemoryCountCache(cfg MemoryCountCacheConfig) *MemoryCountCache {
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &MemoryCountCache{
		ttl:        cfg.TTL,
		maxEntries: cfg.MaxEntries,
		now:        cfg.Now,
		tables:     make(map[string]map[string]countEntry),
	}
}

// Count implements CountCache.
func (c *MemoryCountCache) Count(_ context.Context, table, query string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entries := c.tables[table]
	e, ok := entries[query]
	if !ok {
		return 0, false
	}
	if !c.now().Before(e.expires) {
		delete(entries, query)
		return 0, false
	}
	return e.n, true
}

// StoreCount implements CountCache.
func (c *MemoryCountCache) StoreCount(_ context.Context, table, query string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entries := c.tables[table]
	if entries == nil || len(entries) >= c.maxEntries {
		entries = make(map[string]countEntry)
		c.tables[table] = entries
	}
	entries[query] = countEntry{n: n, expires: c.now().Add(c.ttl)}
}

// Invalidate implements CountCache.
func (c *MemoryCountCache) Invalidate(_ context.Context, table string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tables, table)
}
