package keycloak

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
)

// TestTokenCacheIsABoundedLRU: the cache never holds more than its bound,
// evicts the least recently used token first, and forgets expired tokens.
func TestTokenCacheIsABoundedLRU(t *testing.T) {
	now := time.Now()
	c := newTokenCache(3)
	p := func(i int) *auth.Principal { return &auth.Principal{ID: fmt.Sprint(i)} }
	for i := range 3 {
		c.put(fmt.Sprint("token-", i), p(i), now.Add(time.Hour))
	}
	require.Equal(t, 3, c.len())
	require.NotNil(t, c.get("token-0", now), "token-0 becomes the most recently used")

	c.put("token-3", p(3), now.Add(time.Hour))
	assert.Equal(t, 3, c.len(), "bounded")
	assert.Nil(t, c.get("token-1", now), "the least recently used was evicted")
	for _, tok := range []string{"token-0", "token-2", "token-3"} {
		assert.NotNil(t, c.get(tok, now), tok)
	}

	for i := range 100 {
		c.put(fmt.Sprint("other-", i), p(i), now.Add(time.Hour))
		assert.LessOrEqual(t, c.len(), 3)
	}

	c.put("short", p(9), now.Add(time.Second))
	assert.NotNil(t, c.get("short", now))
	assert.Nil(t, c.get("short", now.Add(time.Second)), "expired at its until")
	assert.Equal(t, 2, c.len(), "the expired entry is removed")

	c.purge()
	assert.Zero(t, c.len())
}
