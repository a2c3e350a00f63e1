package redislimit_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/ratelimit/redislimit"
	"github.com/redis/go-redis/v9"
)

// BenchmarkRedis compares one sliding-window decision with a plain EVALSHA
// of a trivial script, on a private redis-server over loopback. Besides the
// round trip (ns/op) it reports the server's CPU per call from INFO
// commandstats (redis-µs/op).
func BenchmarkRedis(b *testing.B) {
	srv := testenv.StartRedis(b)
	client, err := redislimit.NewClient(srv.URL(), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("user:", i)
	}

	b.Run("sliding_window", func(b *testing.B) {
		l := redislimit.New(client, redislimit.Config{Timeout: time.Second})
		rate := ratelimit.Rate{Limit: 100, Window: time.Second}
		if _, err := l.Allow(ctx, "warm", rate); err != nil {
			b.Fatal(err)
		}
		resetStats(b, client)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := l.Allow(ctx, keys[i%len(keys)], rate); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reportRedisCPU(b, client)
	})

	b.Run("trivial_evalsha", func(b *testing.B) {
		script := redis.NewScript(`return 1`)
		if err := script.Run(ctx, client, []string{"warm"}).Err(); err != nil {
			b.Fatal(err)
		}
		resetStats(b, client)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := script.Run(ctx, client, []string{keys[i%len(keys)]}).Err(); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reportRedisCPU(b, client)
	})
}

func resetStats(b *testing.B, c *redis.Client) {
	if err := c.ConfigResetStat(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
}

// reportRedisCPU reports usec per EVALSHA call from INFO commandstats.
func reportRedisCPU(b *testing.B, c *redis.Client) {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(field, "usec_per_call="); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(f, "redis-µs/op")
			}
		}
	}
}
