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

// benchRates are the cases of the benchmarks. At the benchmarks' pace on
// loopback (some tens of thousands of calls per second) every request is
// admitted; the packed case spreads them over 1000 keys, so that each log
// holds a few tens of entries and stays packed, and the list case over 50
// keys, so that each log holds hundreds and is a list.
var benchRates = []struct {
	name string
	keys int
	rate ratelimit.Rate
}{
	{"packed", 1000, ratelimit.Rate{Limit: 60, Window: time.Second}},
	{"list", 50, ratelimit.Rate{Limit: 10000, Window: time.Second}},
}

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

	for _, br := range benchRates {
		b.Run("sliding_window/"+br.name, func(b *testing.B) {
			l := redislimit.New(client, redislimit.Config{Prefix: br.name + ":", Timeout: time.Second})
			if _, err := l.Allow(ctx, "warm", br.rate); err != nil {
				b.Fatal(err)
			}
			resetStats(b, client)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := l.Allow(ctx, keys[i%br.keys], br.rate); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportRedisCPU(b, client)
			checkForm(b, client, br.name+":"+keys[0], br.name)
		})
	}

	// paired interleaves one decision and one trivial script call per
	// iteration, in alternating order, so that both see the same load on
	// the machine, and reports their round trips, the ratio of the two, and
	// the Redis CPU of each. The trivial script runs with EVALSHA_RO (the
	// same code path in Redis as EVALSHA) so that INFO commandstats tells
	// the two apart.
	for _, br := range benchRates {
		b.Run("paired/"+br.name, func(b *testing.B) {
			l := redislimit.New(client, redislimit.Config{Prefix: "paired-" + br.name + ":", Timeout: time.Second})
			benchPaired(b, client, keys[:br.keys], func(k string) error {
				_, err := l.Allow(ctx, k, br.rate)
				return err
			})
			checkForm(b, client, "paired-"+br.name+":"+keys[0], br.name)
		})
	}

	// paired/floor puts in place of the decision the least any script
	// deciding by the Redis clock does: TIME, GET of the key's state and
	// PSETEX of a new one (here a constant), with the same reply and
	// arguments as the decision's script.
	b.Run("paired/floor", func(b *testing.B) {
		floor := redis.NewScript(`
local t = redis.call('TIME')
local s = redis.call('GET', KEYS[1])
redis.call('PSETEX', KEYS[1], ARGV[3], 'abcdefgh')
return 1`)
		benchPaired(b, client, keys, func(k string) error {
			return floor.Run(ctx, client, []string{"floor:" + k}, int64(1000000), 60, int64(1000), 64).Err()
		})
	})
}

// benchPaired runs the paired benchmark of check against a trivial script.
func benchPaired(b *testing.B, client *redis.Client, keys []string, check func(key string) error) {
	ctx := context.Background()
	script := redis.NewScript(`return 1`)
	if err := script.RunRO(ctx, client, []string{"warm"}).Err(); err != nil {
		b.Fatal(err)
	}
	if err := check("warm"); err != nil {
		b.Fatal(err)
	}
	timed := func(call func() error) time.Duration {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	resetStats(b, client)
	b.ReportAllocs()
	var checks, trivials time.Duration
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		checkK := func() error { return check(k) }
		trivialK := func() error { return script.RunRO(ctx, client, []string{k}).Err() }
		if i%2 == 0 {
			checks += timed(checkK)
			trivials += timed(trivialK)
		} else {
			trivials += timed(trivialK)
			checks += timed(checkK)
		}
		i++
	}
	b.ReportMetric(float64(checks.Nanoseconds())/1e3/float64(i), "check-µs/op")
	b.ReportMetric(float64(trivials.Nanoseconds())/1e3/float64(i), "trivial-µs/op")
	b.ReportMetric(float64(checks)/float64(trivials), "ratio")
	cpu := commandCPU(b, client)
	b.ReportMetric(cpu["evalsha"], "check-redis-µs/op")
	b.ReportMetric(cpu["evalsha_ro"], "trivial-redis-µs/op")
}

// checkForm fails the benchmark unless key's log has the form it measures.
func checkForm(b *testing.B, c *redis.Client, key, form string) {
	typ, err := c.Type(context.Background(), key).Result()
	if err != nil {
		b.Fatal(err)
	}
	if want := map[string]string{"packed": "string", "list": "list"}[form]; typ != want {
		b.Fatalf("log %s is a %s, want a %s", key, typ, want)
	}
}

func resetStats(b *testing.B, c *redis.Client) {
	if err := c.ConfigResetStat(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
}

// reportRedisCPU reports usec per EVALSHA call from INFO commandstats.
func reportRedisCPU(b *testing.B, c *redis.Client) {
	b.ReportMetric(commandCPU(b, c)["evalsha"], "redis-µs/op")
}

// commandCPU returns usec_per_call by command from INFO commandstats.
func commandCPU(b *testing.B, c *redis.Client) map[string]float64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	cpu := map[string]float64{}
	for line := range strings.SplitSeq(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		if !ok {
			continue
		}
		name, fields, _ := strings.Cut(rest, ":")
		for field := range strings.SplitSeq(fields, ",") {
			if v, ok := strings.CutPrefix(field, "usec_per_call="); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				cpu[name] = f
			}
		}
	}
	return cpu
}
