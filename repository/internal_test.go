package repository

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEscapeLike(t *testing.T) {
	tests := map[string]string{
		"plain":    "plain",
		"100%":     `100\%`,
		"a_b":      `a\_b`,
		`back\`:    `back\\`,
		`%_\`:      `\%\_\\`,
		`\%`:       `\\\%`,
		"":         "",
		"ünïcødé_": `ünïcødé\_`,
	}
	for in, want := range tests {
		assert.Equal(t, want, escapeLike(in), in)
	}
}

func TestPageNormalize(t *testing.T) {
	p := func(v int) *int { return &v }
	tests := []struct {
		name          string
		page          Page
		wantPage, per int
		wantErr       bool
	}{
		{"defaults", Page{}, 1, 20, false},
		{"given", Offset(3, 50), 3, 50, false},
		{"max", Offset(1, 1000), 1, 1000, false},
		{"only per_page", Page{PerPage: p(5)}, 1, 5, false},
		{"page 0", Page{Page: p(0)}, 0, 0, true},
		{"per_page 0", Page{PerPage: p(0)}, 0, 0, true},
		{"per_page 1001", Page{PerPage: p(1001)}, 0, 0, true},
		{"cursor ignores page", Page{Page: p(0), Cursor: new(string)}, 1, 20, false},
		{"cursor checks per_page", Page{PerPage: p(0), Cursor: new(string)}, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, per, err := tt.page.normalize()
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalidPage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantPage, page)
			assert.Equal(t, tt.per, per)
		})
	}
	for _, c := range []struct{ total, per, want int }{{0, 20, 0}, {1, 20, 1}, {20, 20, 1}, {21, 20, 2}, {40, 20, 2}, {45, 20, 3}, {1000, 1, 1000}} {
		assert.Equal(t, c.want, pagesFor(c.total, c.per), "%d rows of %d", c.total, c.per)
	}
}

func TestMemoryCountCache(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(0, 0)
	c := NewMemoryCountCache(MemoryCountCacheConfig{TTL: time.Second, MaxEntries: 2, Now: func() time.Time { return now }})

	_, ok := c.Count(ctx, "a", "q1")
	assert.False(t, ok)
	c.StoreCount(ctx, "a", "q1", 5)
	c.StoreCount(ctx, "b", "q1", 7)
	n, ok := c.Count(ctx, "a", "q1")
	assert.True(t, ok)
	assert.Equal(t, 5, n)

	c.Invalidate(ctx, "a")
	_, ok = c.Count(ctx, "a", "q1")
	assert.False(t, ok)
	n, ok = c.Count(ctx, "b", "q1")
	assert.True(t, ok, "other tables keep their entries")
	assert.Equal(t, 7, n)

	now = now.Add(time.Second)
	_, ok = c.Count(ctx, "b", "q1")
	assert.False(t, ok, "expired")

	// A full table starts over instead of growing.
	c.StoreCount(ctx, "a", "q1", 1)
	c.StoreCount(ctx, "a", "q2", 2)
	c.StoreCount(ctx, "a", "q3", 3)
	_, ok = c.Count(ctx, "a", "q1")
	assert.False(t, ok)
	n, ok = c.Count(ctx, "a", "q3")
	assert.True(t, ok)
	assert.Equal(t, 3, n)
}

// funcCache is a CountCache whose type == cannot compare.
type funcCache func(table string)

func (funcCache) Count(context.Context, string, string) (int, bool) { return 0, false }
func (funcCache) StoreCount(context.Context, string, string, int)   {}
func (f funcCache) Invalidate(_ context.Context, table string)      { f(table) }

func TestWrittenTables(t *testing.T) {
	ctx := context.Background()
	mem := NewMemoryCountCache(MemoryCountCacheConfig{})
	mem.StoreCount(ctx, "a", "q", 1)
	mem.StoreCount(ctx, "b", "q", 2)
	mem.StoreCount(ctx, "c", "q", 3)
	var calls []string
	fc := funcCache(func(table string) { calls = append(calls, table) })

	w := new(writtenTables)
	w.add(mem, "a")
	w.add(mem, "b")
	w.add(mem, "a")
	w.add(fc, "a")
	w.add(fc, "a")
	assert.Len(t, w.entries, 4, "the same cache and table once; caches that cannot be compared each time")

	w.invalidate(ctx)
	assert.Equal(t, []string{"a", "a"}, calls)
	for table, cached := range map[string]bool{"a": false, "b": false, "c": true} {
		_, ok := mem.Count(ctx, table, "q")
		assert.Equal(t, cached, ok, "table %s", table)
	}
	assert.Empty(t, w.entries)
}
