// Package rediscount is a repository.CountCache in Redis, shared by every
// instance of a service, so that a write through any instance invalidates
// the totals that all of them serve.
//
// Each table's totals live in one hash, PREFIX + table, whose fields are
// hashes of the count queries and whose values hold the total and its
// expiry. Invalidation deletes the hash. Redis failures never fail a query:
// a failed read is a miss, a failed write or invalidation is logged, and
// the hash expires after the TTL anyway.
package rediscount

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pkgroute/pkgroute/internal/lograte"
)

// Client is the part of a go-redis client that Cache uses; *redis.Client,
// *redis.ClusterClient and redis.UniversalClient implement it.
type Client interface {
	HGet(ctx context.Context, key, field string) *redis.StringCmd
	HSet(ctx context.Context, key string, values ...any) *redis.IntCmd
	PExpire(ctx context.Context, key string, expiration time.Duration) *redis.BoolCmd
	Del(ctx context.Context, keys ...string) *redis.IntCmd
}

// Config configures a Cache.
type Config struct {
	// Prefix starts every key. Default "pkgroute:count:".
	Prefix string
	// TTL is how long a total stays fresh. Default 5 s.
	TTL time.Duration
	// Logger receives Redis failures, at most one record per kind per 10 s
	// (the next one counts those left out in "suppressed"): with Redis
	// down, every count would log one; nil discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Cache is a repository.CountCache in Redis.
type Cache struct {
	client Client
	prefix string
	ttl    time.Duration
	logger *lograte.Logger
	now    func() time.Time
}

// New returns a Cache over client.
func New(client Client, cfg Config) *Cache {
	if client == nil {
		panic("rediscount: nil client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "pkgroute:count:"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{client: client, prefix: cfg.Prefix, ttl: cfg.TTL, logger: lograte.New(cfg.Logger, 0, cfg.Now), now: cfg.Now}
}

func field(query string) string {
	h := sha256.Sum256([]byte(query))
	return hex.EncodeToString(h[:16])
}

// Count implements repository.CountCache.
func (c *Cache) Count(ctx context.Context, table, query string) (int, bool) {
	v, err := c.client.HGet(ctx, c.prefix+table, field(query)).Result()
	if err != nil {
		if err != redis.Nil {
			c.logger.Log(ctx, slog.LevelWarn, "count cache read failed", "table", table, "error", err)
		}
		return 0, false
	}
	ns, exp, ok := strings.Cut(v, ":")
	if !ok {
		return 0, false
	}
	n, err1 := strconv.Atoi(ns)
	expires, err2 := strconv.ParseInt(exp, 10, 64)
	if err1 != nil || err2 != nil || c.now().UnixMilli() >= expires {
		return 0, false
	}
	return n, true
}

// StoreCount implements repository.CountCache.
func (c *Cache) StoreCount(ctx context.Context, table, query string, n int) {
	key := c.prefix + table
	v := strconv.Itoa(n) + ":" + strconv.FormatInt(c.now().Add(c.ttl).UnixMilli(), 10)
	if err := c.client.HSet(ctx, key, field(query), v).Err(); err != nil {
		c.logger.Log(ctx, slog.LevelWarn, "count cache write failed", "table", table, "error", err)
		return
	}
	// The hash outlives its freshest entry by a little, then goes.
	if err := c.client.PExpire(ctx, key, 2*c.ttl).Err(); err != nil {
		c.logger.Log(ctx, slog.LevelWarn, "count cache write failed", "table", table, "error", err)
	}
}

// Invalidate implements repository.CountCache.
func (c *Cache) Invalidate(ctx context.Context, table string) {
	if err := c.client.Del(ctx, c.prefix+table).Err(); err != nil {
		c.logger.Log(ctx, slog.LevelWarn, "count cache invalidation failed", "table", table, "error", err)
	}
}
