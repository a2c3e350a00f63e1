// Package countcachetest is the conformance suite for
// repository.CountCache implementations.
package countcachetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/repository"
)

// Clock is a settable clock for caches under test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Factory returns a cache whose entries live for ttl as measured by now.
// The first call within a test returns an empty cache; for a shared
// backend, later calls within the same test return other instances over
// the same storage (as other processes would see it).
type Factory func(t *testing.T, ttl time.Duration, now func() time.Time) repository.CountCache

// Run runs the suite against the caches made by f. shared says whether
// instances share their storage (a Redis cache does, an in-memory one does
// not); the sharing tests run only then.
func Run(t *testing.T, f Factory, shared bool) {
	ctx := context.Background()
	newClock := func() *Clock { return &Clock{now: time.Unix(1_700_000_000, 0)} }

	t.Run("MissThenHit", func(t *testing.T) {
		clock := newClock()
		c := f(t, time.Minute, clock.Now)
		_, ok := c.Count(ctx, "authors", "q1")
		assert.False(t, ok)
		c.StoreCount(ctx, "authors", "q1", 42)
		n, ok := c.Count(ctx, "authors", "q1")
		require.True(t, ok)
		assert.Equal(t, 42, n)
		c.StoreCount(ctx, "authors", "q1", 0)
		n, ok = c.Count(ctx, "authors", "q1")
		require.True(t, ok, "zero is a total too")
		assert.Zero(t, n)
		_, ok = c.Count(ctx, "authors", "q2")
		assert.False(t, ok, "queries are distinct")
		_, ok = c.Count(ctx, "books", "q1")
		assert.False(t, ok, "tables are distinct")
	})

	t.Run("Expiry", func(t *testing.T) {
		clock := newClock()
		c := f(t, time.Minute, clock.Now)
		c.StoreCount(ctx, "authors", "q", 3)
		clock.Advance(59 * time.Second)
		_, ok := c.Count(ctx, "authors", "q")
		assert.True(t, ok)
		clock.Advance(time.Second)
		_, ok = c.Count(ctx, "authors", "q")
		assert.False(t, ok, "expired at the TTL")
	})

	t.Run("InvalidateTable", func(t *testing.T) {
		clock := newClock()
		c := f(t, time.Minute, clock.Now)
		c.StoreCount(ctx, "authors", "q1", 1)
		c.StoreCount(ctx, "authors", "q2", 2)
		c.StoreCount(ctx, "books", "q1", 3)
		c.Invalidate(ctx, "authors")
		_, ok := c.Count(ctx, "authors", "q1")
		assert.False(t, ok)
		_, ok = c.Count(ctx, "authors", "q2")
		assert.False(t, ok)
		n, ok := c.Count(ctx, "books", "q1")
		assert.True(t, ok)
		assert.Equal(t, 3, n)
		c.Invalidate(ctx, "nothing-cached")
	})

	t.Run("Concurrent", func(t *testing.T) {
		clock := newClock()
		c := f(t, time.Minute, clock.Now)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for j := range 50 {
					c.StoreCount(ctx, "authors", "q", i*100+j)
					if n, ok := c.Count(ctx, "authors", "q"); ok {
						assert.GreaterOrEqual(t, n, 0)
					}
					if j%10 == 0 {
						c.Invalidate(ctx, "authors")
					}
				}
			})
		}
		wg.Wait()
	})
	if !shared {
		return
	}
	t.Run("Shared", func(t *testing.T) {
		clock := newClock()
		a, b := f(t, time.Minute, clock.Now), f(t, time.Minute, clock.Now)
		a.StoreCount(ctx, "authors", "q", 9)
		n, ok := b.Count(ctx, "authors", "q")
		require.True(t, ok)
		assert.Equal(t, 9, n)
		b.Invalidate(ctx, "authors")
		_, ok = a.Count(ctx, "authors", "q")
		assert.False(t, ok, "an invalidation reaches every instance")
	})
}
