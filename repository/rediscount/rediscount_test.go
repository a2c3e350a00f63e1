package rediscount_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/countcachetest"
	"github.com/pkgroute/pkgroute/repository/rediscount"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(t *testing.T, url string) *redis.Client {
	opt, err := redis.ParseURL(url)
	require.NoError(t, err)
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	url := testenv.RedisURL(t)
	prefixes := map[*testing.T]string{}
	countcachetest.Run(t, func(t *testing.T, ttl time.Duration, now func() time.Time) repository.CountCache {
		prefix, ok := prefixes[t]
		if !ok {
			prefix = testenv.RedisPrefix(t)
			prefixes[t] = prefix
		}
		return rediscount.New(client(t, url), rediscount.Config{Prefix: prefix, TTL: ttl, Now: now})
	}, true)
}

func TestRedisDown(t *testing.T) {
	var logs bytes.Buffer
	c := client(t, "redis://127.0.0.1:"+strconv.Itoa(testenv.FreePort(t))+"/0?dial_timeout=200ms&max_retries=-1")
	cache := rediscount.New(c, rediscount.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	cache.StoreCount(ctx, "authors", "q", 1)
	_, ok := cache.Count(ctx, "authors", "q")
	assert.False(t, ok, "a failing Redis is a miss")
	cache.Invalidate(ctx, "authors")
	assert.Contains(t, logs.String(), "count cache write failed")
	assert.Contains(t, logs.String(), "count cache read failed")
	assert.Contains(t, logs.String(), "count cache invalidation failed")
}

// downClient is a Client whose every command fails.
type downClient struct{}

var errDown = errors.New("dial tcp: connection refused")

func (downClient) HGet(context.Context, string, string) *redis.StringCmd {
	return redis.NewStringResult("", errDown)
}
func (downClient) HSet(context.Context, string, ...any) *redis.IntCmd {
	return redis.NewIntResult(0, errDown)
}
func (downClient) PExpire(context.Context, string, time.Duration) *redis.BoolCmd {
	return redis.NewBoolResult(false, errDown)
}
func (downClient) Del(context.Context, ...string) *redis.IntCmd {
	return redis.NewIntResult(0, errDown)
}

// TestRedisDownLogsOncePerInterval: while Redis is down every count fails;
// one record per kind per interval, the next one counting those left out.
func TestRedisDownLogsOncePerInterval(t *testing.T) {
	var logs bytes.Buffer
	now := time.Unix(1000, 0)
	cache := rediscount.New(downClient{}, rediscount.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	ctx := context.Background()
	for range 100 {
		cache.Count(ctx, "authors", "q")
		cache.StoreCount(ctx, "authors", "q", 1)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "count cache read failed"), logs.String())
	assert.Equal(t, 1, strings.Count(logs.String(), "count cache write failed"), logs.String())
	now = now.Add(time.Minute)
	cache.Count(ctx, "authors", "q")
	assert.Contains(t, logs.String(), "suppressed=99")
}

func TestKeyLayout(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := testenv.RedisPrefix(t)
	c := client(t, url)
	cache := rediscount.New(c, rediscount.Config{Prefix: prefix, TTL: time.Second})
	ctx := context.Background()
	cache.StoreCount(ctx, "authors", "SELECT ...", 5)
	n, err := c.HLen(ctx, prefix+"authors").Result()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
	ttl, err := c.PTTL(ctx, prefix+"authors").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Second, "the hash outlives its entries")
	assert.LessOrEqual(t, ttl, 2*time.Second)
}
