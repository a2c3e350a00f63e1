package testenv

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// RedisURL returns the URL of the shared Redis server, after checking that it
// answers.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := getenv(EnvRedisURL, DefaultRedisURL)
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("testenv: parse %s: %v", EnvRedisURL, err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := setupContext(t)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		Unavailable(t, fmt.Sprintf("redis not reachable at %s: %v", redactURL(u), err))
	}
	return u
}

// RedisPrefix returns a unique key prefix on the shared Redis server; every
// key under it is deleted at cleanup.
func RedisPrefix(t testing.TB) string {
	t.Helper()
	u := RedisURL(t)
	prefix := RandomName("pkgroute:test:") + ":"
	t.Cleanup(func() {
		opt, err := redis.ParseURL(u)
		if err != nil {
			return
		}
		c := redis.NewClient(opt)
		defer c.Close()
		ctx, cancel := setupContext(t)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := c.Del(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("testenv: delete keys under %s: %v", prefix, err)
				return
			}
			keys = keys[n:]
		}
	})
	return prefix
}
