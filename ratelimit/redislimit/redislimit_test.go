package redislimit_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/ratelimit/ratelimittest"
	"github.com/pkgroute/pkgroute/ratelimit/redislimit"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the fault tests make many on purpose.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// sharedClient returns a client of the shared test Redis and a key prefix
// that is cleaned up after the test.
func sharedClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	url := testenv.RedisURL(t)
	prefix := testenv.RedisPrefix(t)
	// Generous timeout: the shared server is busy with other packages' tests
	// and this client is about correctness, not faults.
	c, err := redislimit.NewClient(url, 2*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c, prefix
}

// logForms are the two forms of a key's admission log: the packed string
// of short logs (the default bound; the tests' logs are shorter) and the
// list of longer ones (every log with a bound of 0).
var logForms = []struct {
	name      string
	packedMax int
}{
	{"packed", 64},
	{"list", 0},
}

func newLimiter(client redis.Scripter, cfg redislimit.Config, packedMax int) *redislimit.Limiter {
	l := redislimit.New(client, cfg)
	l.SetPackedMax(packedMax)
	return l
}

// newClock returns a test clock at the current time in whole seconds,
// which the tests move by hand: the limiters decide by it instead of the
// Redis clock, so that no result depends on how fast the machine runs.
// The tests' windows are a minute or longer, so that no key expires by the
// Redis clock (its TTL) while a test runs.
func newClock() *ratelimittest.Clock { return ratelimittest.NewClock() }

func TestLimiterConformance(t *testing.T) {
	t.Parallel()
	// "mixed": logs start packed and become lists after 3 entries.
	for _, form := range append(logForms, struct {
		name      string
		packedMax int
	}{"mixed", 3}) {
		t.Run(form.name, func(t *testing.T) {
			t.Parallel()
			client, prefix := sharedClient(t)
			cfg := redislimit.Config{Prefix: prefix + "rl:", Timeout: 2 * time.Second}
			ratelimittest.RunLimiter(t, ratelimittest.Limiters{
				New: func(t *testing.T, now func() time.Time) (ratelimit.Limiter, ratelimit.Limiter) {
					// Two instances, each with its own connection pool, on one Redis.
					other, err := redislimit.NewClient(testenv.RedisURL(t), 2*time.Second)
					require.NoError(t, err)
					t.Cleanup(func() { _ = other.Close() })
					a, b := newLimiter(client, cfg, form.packedMax), newLimiter(other, cfg, form.packedMax)
					a.SetClock(now)
					b.SetClock(now)
					return a, b
				},
				// Keys expire by the Redis clock: the suite checks their TTL.
				TTL: func(t *testing.T, key string) time.Duration {
					d, err := client.PTTL(context.Background(), cfg.Prefix+key).Result()
					require.NoError(t, err)
					return d
				},
			})
		})
	}
}

func TestConnectionsConformance(t *testing.T) {
	t.Parallel()
	client, prefix := sharedClient(t)
	cfg := redislimit.ConnectionsConfig{Prefix: prefix + "conn:", Timeout: 2 * time.Second}
	ratelimittest.RunConnections(t, ratelimittest.Connections{
		New: func(t *testing.T) (ratelimit.ConnectionLimiter, ratelimit.ConnectionLimiter) {
			other, err := redislimit.NewClient(testenv.RedisURL(t), 2*time.Second)
			require.NoError(t, err)
			t.Cleanup(func() { _ = other.Close() })
			return redislimit.NewConnections(client, cfg), redislimit.NewConnections(other, cfg)
		},
	})
}

// readLog decodes the admission log of a key, the admission times in µs
// by the Redis clock, and reports its form.
func readLog(t *testing.T, client *redis.Client, key string) (log []int64, form string) {
	t.Helper()
	ctx := context.Background()
	typ, err := client.Type(ctx, key).Result()
	require.NoError(t, err)
	switch typ {
	case "string":
		// 8-byte little-endian doubles.
		raw, err := client.Get(ctx, key).Bytes()
		require.NoError(t, err)
		require.Zero(t, len(raw)%8, "log length")
		for ; len(raw) > 0; raw = raw[8:] {
			log = append(log, int64(math.Float64frombits(binary.LittleEndian.Uint64(raw))))
		}
		return log, "packed"
	case "list":
		entries, err := client.LRange(ctx, key, 0, -1).Result()
		require.NoError(t, err)
		for _, e := range entries {
			v, err := strconv.ParseInt(e, 10, 64)
			require.NoError(t, err, "entry %q", e)
			log = append(log, v)
		}
		return log, "list"
	}
	t.Fatalf("key %s has type %s", key, typ)
	return nil, ""
}

// writeLog stores log (µs) as key's admission log in the given form, for
// ten minutes by the Redis clock.
func writeLog(t *testing.T, client *redis.Client, key, form string, log []int64) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, client.Del(ctx, key).Err())
	if form == "packed" {
		var raw []byte
		for _, v := range log {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(float64(v)))
		}
		require.NoError(t, client.Set(ctx, key, raw, 10*time.Minute).Err())
		return
	}
	for _, v := range log {
		require.NoError(t, client.RPush(ctx, key, v).Err())
	}
	require.NoError(t, client.Expire(ctx, key, 10*time.Minute).Err())
}

// forEachForm runs f in parallel for each form of the log, with a limiter
// of that form on the shared Redis under a fresh prefix, deciding by clock.
func forEachForm(t *testing.T, f func(t *testing.T, form string, client *redis.Client, prefix string, l *redislimit.Limiter, clock *ratelimittest.Clock)) {
	t.Parallel()
	for _, form := range logForms {
		t.Run(form.name, func(t *testing.T) {
			t.Parallel()
			client, prefix := sharedClient(t)
			clock := newClock()
			l := newLimiter(client, redislimit.Config{Prefix: prefix, Timeout: 2 * time.Second}, form.packedMax)
			l.SetClock(clock.Now)
			f(t, form.name, client, prefix, l, clock)
		})
	}
}

func TestLimiterMemoryIsBoundedByQuota(t *testing.T) {
	forEachForm(t, func(t *testing.T, form string, client *redis.Client, prefix string, l *redislimit.Limiter, clock *ratelimittest.Clock) {
		rate := ratelimit.Rate{Limit: 5, Burst: 2, Window: time.Hour}
		for range 50 {
			_, err := l.Allow(context.Background(), "k", rate)
			require.NoError(t, err)
			clock.Advance(time.Second)
		}
		log, got := readLog(t, client, prefix+"k")
		assert.Equal(t, form, got)
		assert.Len(t, log, 7, "one entry per admission in the window")
		assert.True(t, slices.IsSorted(log), "oldest first")
		// The TTL runs by the Redis clock: the bounds allow for an hour of it.
		ttl, err := client.PTTL(context.Background(), prefix+"k").Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, time.Hour, "a burst log lives two windows")
		assert.LessOrEqual(t, ttl, 2*time.Hour)
	})
}

func TestLimiterDropsExpiredEntries(t *testing.T) {
	forEachForm(t, func(t *testing.T, form string, client *redis.Client, prefix string, l *redislimit.Limiter, clock *ratelimittest.Clock) {
		rate := ratelimit.Rate{Limit: 5, Window: time.Minute}
		ctx := context.Background()
		for range 2 {
			res, err := l.Allow(ctx, "k", rate)
			require.NoError(t, err)
			require.True(t, res.Allowed)
		}
		clock.Advance(30 * time.Second)
		res, err := l.Allow(ctx, "k", rate)
		require.NoError(t, err)
		require.True(t, res.Allowed)
		assert.Equal(t, 2, res.Remaining)
		log, _ := readLog(t, client, prefix+"k")
		require.Len(t, log, 3)

		// The first two leave the window; the next admission drops them.
		clock.Advance(30 * time.Second)
		res, err = l.Allow(ctx, "k", rate)
		require.NoError(t, err)
		require.True(t, res.Allowed)
		assert.Equal(t, 3, res.Remaining, "the first two are no longer counted")
		log, _ = readLog(t, client, prefix+"k")
		require.Len(t, log, 2)
		assert.Equal(t, []int64{clock.Now().Add(-30 * time.Second).UnixMicro(), clock.Now().UnixMicro()}, log)
	})
}

func TestLimiterCountsExactlyWithManyExpired(t *testing.T) {
	// Logs written directly: entries that left the window at the head, in
	// numbers that exercise the search for the first one still inside.
	t.Parallel()
	for _, form := range logForms {
		for _, tt := range []struct{ expired, inside int }{
			{0, 5}, {1, 5}, {2, 5}, {3, 5}, {7, 5}, {8, 5}, {20, 5}, {1, 0}, {3, 0},
		} {
			expired, inside := tt.expired, tt.inside
			t.Run(fmt.Sprintf("%s/%d+%d", form.name, expired, inside), func(t *testing.T) {
				t.Parallel()
				client, prefix := sharedClient(t)
				l := newLimiter(client, redislimit.Config{Prefix: prefix, Timeout: 2 * time.Second}, form.packedMax)
				clock := newClock()
				l.SetClock(clock.Now)
				now := clock.Now()
				var log []int64
				for i := range expired {
					log = append(log, now.Add(-2*time.Minute).UnixMicro()+int64(i))
				}
				for i := range inside {
					log = append(log, now.Add(-time.Second).UnixMicro()+int64(i))
				}
				writeLog(t, client, prefix+"k", form.name, log)

				rate := ratelimit.Rate{Limit: 30, Window: time.Minute}
				res, err := l.Allow(context.Background(), "k", rate)
				require.NoError(t, err)
				require.True(t, res.Allowed)
				assert.Equal(t, rate.Limit-inside-1, res.Remaining)
				got, gotForm := readLog(t, client, prefix+"k")
				assert.Equal(t, form.name, gotForm)
				assert.Len(t, got, inside+1, "expired entries dropped")

				// A quota of inside+1 is now used up; the oldest entry
				// inside the window is the next to leave.
				res, err = l.Allow(context.Background(), "k", ratelimit.Rate{Limit: inside + 1, Window: time.Minute})
				require.NoError(t, err)
				require.False(t, res.Allowed)
				want := time.Minute - time.Second // made 1 s ago
				if inside == 0 {
					want = time.Minute // the admission above
				}
				assert.Equal(t, want, res.RetryAfter)
			})
		}
	}
}

func TestLimiterRefusalAfterQuotaShrank(t *testing.T) {
	// Five in the window, two that left it, and a quota of 3: refused, with
	// the hints of the entry that must leave; the entries in the window
	// stay as they were.
	forEachForm(t, func(t *testing.T, form string, client *redis.Client, prefix string, l *redislimit.Limiter, clock *ratelimittest.Clock) {
		now := clock.Now()
		log := []int64{now.Add(-time.Minute).UnixMicro(), now.Add(-time.Minute).UnixMicro() + 1}
		var inside []int64
		for i := range 5 {
			inside = append(inside, now.Add(-time.Second).UnixMicro()+int64(i)*100000)
		}
		writeLog(t, client, prefix+"k", form, append(log, inside...))

		res, err := l.Allow(context.Background(), "k", ratelimit.Rate{Limit: 3, Window: 10 * time.Second})
		require.NoError(t, err)
		// The third newest (made 1 s - 200 ms ago) must leave first; the
		// newest (made 1 s - 400 ms ago) last.
		assert.Equal(t, ratelimit.Result{Limit: 3, RetryAfter: 9200 * time.Millisecond, ResetAfter: 9400 * time.Millisecond}, res)
		got, _ := readLog(t, client, prefix+"k")
		var kept []int64
		for _, e := range got {
			if e > now.Add(-10*time.Second).UnixMicro() {
				kept = append(kept, e)
			}
		}
		assert.Equal(t, inside, kept)
	})
}

func TestLimiterQuotaChangeForAKey(t *testing.T) {
	forEachForm(t, func(t *testing.T, form string, client *redis.Client, prefix string, l *redislimit.Limiter, clock *ratelimittest.Clock) {
		const w = time.Minute
		ctx := context.Background()
		allow := func(limit int) ratelimit.Result {
			t.Helper()
			res, err := l.Allow(ctx, "k", ratelimit.Rate{Limit: limit, Window: w})
			require.NoError(t, err)
			return res
		}
		require.True(t, allow(5).Allowed)
		clock.Advance(time.Second)
		require.True(t, allow(5).Allowed)
		clock.Advance(time.Second)
		require.True(t, allow(5).Allowed)
		clock.Advance(time.Second)

		// Three admitted in the window (at 0, 1 and 2 s): a quota of 2
		// refuses until the second of them leaves the window.
		res := allow(2)
		assert.Equal(t, ratelimit.Result{Limit: 2, RetryAfter: w - 2*time.Second, ResetAfter: w - time.Second}, res)
		log, _ := readLog(t, client, prefix+"k")
		require.Len(t, log, 3, "a refusal writes nothing")

		// A quota of 4 admits one more.
		res = allow(4)
		assert.True(t, res.Allowed)
		assert.Equal(t, 0, res.Remaining)
		assert.False(t, allow(4).Allowed)
	})
}

func TestLimiterLogFormFollowsTheQuota(t *testing.T) {
	// Quotas up to the bound (10 here) keep packed logs, larger ones lists;
	// a log written under a quota on the other side of the bound changes
	// form at its next admission, keeping its entries.
	t.Parallel()
	client, prefix := sharedClient(t)
	l := newLimiter(client, redislimit.Config{Prefix: prefix, Timeout: 2 * time.Second}, 10)
	clock := newClock()
	l.SetClock(clock.Now)
	ctx := context.Background()
	allow := func(key string, limit int) ratelimit.Result {
		t.Helper()
		res, err := l.Allow(ctx, key, ratelimit.Rate{Limit: limit, Window: time.Hour})
		require.NoError(t, err)
		return res
	}
	for i := range 15 {
		res := allow("big", 15)
		require.True(t, res.Allowed, "request %d", i+1)
		assert.Equal(t, 15-i-1, res.Remaining)
		log, form := readLog(t, client, prefix+"big")
		require.Len(t, log, i+1)
		assert.True(t, slices.IsSorted(log))
		assert.Equal(t, "list", form, "request %d", i+1)
		// The TTL runs by the Redis clock: the bound allows for half an
		// hour of it.
		ttl, err := client.PTTL(ctx, prefix+"big").Result()
		require.NoError(t, err)
		assert.Greater(t, ttl, 30*time.Minute)
	}
	assert.False(t, allow("big", 15).Allowed)

	// Packed under a small quota, a list under a large one, packed again.
	for range 4 {
		require.True(t, allow("k", 5).Allowed)
	}
	_, form := readLog(t, client, prefix+"k")
	require.Equal(t, "packed", form)
	res := allow("k", 12)
	require.True(t, res.Allowed)
	assert.Equal(t, 7, res.Remaining)
	log, form := readLog(t, client, prefix+"k")
	assert.Equal(t, "list", form)
	assert.Len(t, log, 5)
	assert.True(t, slices.IsSorted(log))
	assert.False(t, allow("k", 5).Allowed, "5 in the window")
	res = allow("k", 6)
	require.True(t, res.Allowed)
	assert.Equal(t, 0, res.Remaining)
	log, form = readLog(t, client, prefix+"k")
	assert.Equal(t, "packed", form)
	assert.Len(t, log, 6)

	// A limiter with the default bound decides on these logs as well.
	other := redislimit.New(client, redislimit.Config{Prefix: prefix, Timeout: 2 * time.Second})
	other.SetClock(clock.Now)
	res, err := other.Allow(ctx, "big", ratelimit.Rate{Limit: 15, Window: time.Hour})
	require.NoError(t, err)
	assert.False(t, res.Allowed)
	res, err = other.Allow(ctx, "big", ratelimit.Rate{Limit: 16, Window: time.Hour})
	require.NoError(t, err)
	assert.True(t, res.Allowed)
	assert.Equal(t, 0, res.Remaining)
}

func TestLimiterFormsRaiseNoServerErrors(t *testing.T) {
	// Deciding on either form asks Redis nothing that fails: no WRONGTYPE
	// in the server's error statistics, which operators watch.
	t.Parallel()
	srv := testenv.StartRedis(t)
	client, err := redislimit.NewClient(srv.URL(), 2*time.Second)
	require.NoError(t, err)
	defer client.Close()
	ctx := context.Background()
	l := newLimiter(client, redislimit.Config{Timeout: 2 * time.Second}, 3)
	for _, rate := range []ratelimit.Rate{
		{Limit: 3, Window: time.Minute},  // packed
		{Limit: 10, Window: time.Minute}, // a list
	} {
		key := fmt.Sprint("k", rate.Limit)
		for range rate.Limit + 2 {
			_, err := l.Allow(ctx, key, rate)
			require.NoError(t, err)
		}
	}
	_, form := readLog(t, client, "ratelimit:k10")
	require.Equal(t, "list", form)
	info, err := client.Info(ctx, "errorstats").Result()
	require.NoError(t, err)
	assert.NotContains(t, info, "WRONGTYPE")
	assert.Contains(t, info, "# Errorstats", "the section was read")
}

func TestLimiterLeavesOtherDataAlone(t *testing.T) {
	// A key that holds something else than an admission log is a backend
	// failure, whatever the quota, and stays as it was.
	t.Parallel()
	client, prefix := sharedClient(t)
	ctx := context.Background()
	require.NoError(t, client.SAdd(ctx, prefix+"k", "member").Err())
	l := redislimit.New(client, redislimit.Config{Prefix: prefix, Timeout: 2 * time.Second})
	for _, limit := range []int{10, 100} {
		_, err := l.Allow(ctx, "k", ratelimit.Rate{Limit: limit, Window: time.Minute})
		require.ErrorIs(t, err, ratelimit.ErrUnavailable, "limit %d", limit)
		var ue *ratelimit.UnavailableError
		require.ErrorAs(t, err, &ue)
		assert.ErrorContains(t, ue.Err, "WRONGTYPE", "limit %d", limit)
	}
	members, err := client.SMembers(ctx, prefix+"k").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"member"}, members)
}

func TestLimiterClockBehindTheLog(t *testing.T) {
	forEachForm(t, func(t *testing.T, form string, client *redis.Client, prefix string, l *redislimit.Limiter, clock *ratelimittest.Clock) {
		ctx := context.Background()
		// The log's newest entry is 5 minutes ahead of the clock, as after
		// a failover to a server whose clock is 5 minutes behind.
		ahead := clock.Now().Add(5 * time.Minute).UnixMicro()
		writeLog(t, client, prefix+"k", form, []int64{ahead})

		rate := ratelimit.Rate{Limit: 2, Window: time.Minute}
		res, err := l.Allow(ctx, "k", rate)
		require.NoError(t, err)
		require.True(t, res.Allowed)
		assert.Equal(t, 0, res.Remaining)
		assert.Equal(t, time.Minute, res.ResetAfter)

		// Time is taken as the newest entry's: the log stays ordered
		// and the hints never exceed the window.
		res, err = l.Allow(ctx, "k", rate)
		require.NoError(t, err)
		require.False(t, res.Allowed)
		assert.Equal(t, time.Minute, res.RetryAfter)
		assert.Equal(t, time.Minute, res.ResetAfter)
		log, _ := readLog(t, client, prefix+"k")
		assert.Equal(t, []int64{ahead, ahead}, log)
	})
}

func TestLimiterDecidesByTheRedisClock(t *testing.T) {
	// Without a test clock the entries are Redis TIME readings.
	t.Parallel()
	client, prefix := sharedClient(t)
	ctx := context.Background()
	for _, form := range logForms {
		l := newLimiter(client, redislimit.Config{Prefix: prefix, Timeout: 2 * time.Second}, form.packedMax)
		before, err := client.Time(ctx).Result()
		require.NoError(t, err)
		res, err := l.Allow(ctx, form.name, ratelimit.Rate{Limit: 2, Window: time.Hour})
		require.NoError(t, err)
		require.True(t, res.Allowed)
		after, err := client.Time(ctx).Result()
		require.NoError(t, err)
		log, got := readLog(t, client, prefix+form.name)
		assert.Equal(t, form.name, got)
		require.Len(t, log, 1)
		assert.GreaterOrEqual(t, log[0], before.UnixMicro(), form.name)
		assert.LessOrEqual(t, log[0], after.UnixMicro(), form.name)
	}
}

func TestLocalCacheSparesRedis(t *testing.T) {
	t.Parallel()
	client, prefix := sharedClient(t)
	l := redislimit.New(client, redislimit.Config{Prefix: prefix, Timeout: 2 * time.Second, LocalCache: true})
	clock := newClock()
	l.SetClock(clock.Now)
	rate := ratelimit.Rate{Limit: 2, Window: time.Minute}
	ctx := context.Background()
	for range 2 {
		res, err := l.Allow(ctx, "k", rate)
		require.NoError(t, err)
		require.True(t, res.Allowed)
	}
	clock.Advance(time.Second)
	res, err := l.Allow(ctx, "k", rate)
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, rate.Window-time.Second, res.RetryAfter)

	// While the refusal is cached, Redis is not asked: deleting the key
	// there does not let requests through.
	require.NoError(t, client.Del(ctx, prefix+"k").Err())
	clock.Advance(res.RetryAfter - time.Microsecond)
	cached, err := l.Allow(ctx, "k", rate)
	require.NoError(t, err)
	assert.Equal(t, ratelimit.Result{Limit: 2, RetryAfter: time.Microsecond, ResetAfter: time.Microsecond}, cached)

	// A different quota for the key is not answered from the cache.
	res, err = l.Allow(ctx, "k", ratelimit.Rate{Limit: 3, Window: time.Minute})
	require.NoError(t, err)
	assert.True(t, res.Allowed)

	// At RetryAfter Redis decides again.
	clock.Advance(time.Microsecond)
	res, err = l.Allow(ctx, "k", rate)
	require.NoError(t, err)
	assert.True(t, res.Allowed)
}

func TestCrashedHolderFreesWithinLease(t *testing.T) {
	t.Parallel()
	client, prefix := sharedClient(t)
	// The leases follow a test clock; the renewals of Run come every 20 ms.
	// The key's TTL (the lease, by the Redis clock) outlasts the test.
	const lease = time.Minute
	cfg := redislimit.ConnectionsConfig{Prefix: prefix, Lease: lease, RenewInterval: 20 * time.Millisecond, Timeout: 2 * time.Second}
	clock := newClock()
	crashed := redislimit.NewConnections(client, cfg)
	alive := redislimit.NewConnections(client, cfg)
	crashed.SetClock(clock.Now)
	alive.SetClock(clock.Now)
	ctx := context.Background()
	acquire := func(l *redislimit.Connections, id string) bool {
		t.Helper()
		ok, err := l.Acquire(ctx, "alice", id, 2)
		require.NoError(t, err)
		return ok
	}
	// leaseEnd returns the end of a slot's lease in µs, 0 when not held.
	leaseEnd := func(id string) int64 {
		s, err := client.ZScore(ctx, prefix+"alice", id).Result()
		if err == redis.Nil {
			return 0
		}
		require.NoError(t, err)
		return int64(s)
	}

	start := clock.Now()
	require.True(t, acquire(crashed, "c1"))
	require.True(t, acquire(alive, "c2"))
	require.False(t, acquire(alive, "c3"), "at the cap")

	// alive renews its slot; crashed does not.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- alive.Run(runCtx) }()
	defer func() { stop(); require.NoError(t, <-done) }()

	renewedAt := clock.Advance(lease / 2)
	require.Eventually(t, func() bool { return leaseEnd("c2") == renewedAt.Add(lease).UnixMicro() },
		10*time.Second, 10*time.Millisecond, "Run renews c2")
	assert.Equal(t, start.Add(lease).UnixMicro(), leaseEnd("c1"), "c1 is not renewed")

	// c1 is held until its lease ends, and free from then on.
	clock.Advance(lease/2 - time.Microsecond)
	require.False(t, acquire(alive, "c3"), "not before the lease ends")
	clock.Advance(time.Microsecond)
	require.True(t, acquire(alive, "c3"), "when the lease ends")

	// alive's renewed slot c2 outlived c1's lease.
	require.NoError(t, alive.Renew(ctx, "alice", "c2"))
	require.ErrorIs(t, crashed.Renew(ctx, "alice", "c1"), ratelimit.ErrNotHeld)

	// The key is gone once every slot is released.
	require.NoError(t, alive.Release(ctx, "alice", "c2"))
	require.NoError(t, alive.Release(ctx, "alice", "c3"))
	n, err := client.Exists(ctx, prefix+"alice").Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestRunReacquiresLostLease(t *testing.T) {
	t.Parallel()
	client, prefix := sharedClient(t)
	// A test clock that stands still: the lease cannot end during the test.
	clock := newClock()
	c := redislimit.NewConnections(client, redislimit.ConnectionsConfig{
		Prefix: prefix, Lease: time.Minute, RenewInterval: 50 * time.Millisecond, Timeout: 2 * time.Second,
	})
	c.SetClock(clock.Now)
	ctx := context.Background()
	ok, err := c.Acquire(ctx, "bob", "c1", 1)
	require.NoError(t, err)
	require.True(t, ok)
	// Redis loses the data (e.g. restarted without persistence).
	require.NoError(t, client.Del(ctx, prefix+"bob").Err())

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c.Run(runCtx) }()
	defer func() { stop(); require.NoError(t, <-done) }()
	require.Eventually(t, func() bool {
		s, err := client.ZScore(ctx, prefix+"bob", "c1").Result()
		return err == nil && s > 0
	}, 10*time.Second, 10*time.Millisecond)
	ok, err = c.Acquire(ctx, "bob", "other", 1)
	require.NoError(t, err)
	assert.False(t, ok, "the re-acquired slot counts")
}

func TestLimiterLongListUnderASmallQuota(t *testing.T) {
	// A long list left by a large quota, checked under a small one: the
	// decision reads the newest entries only, and a refusal keeps the list.
	// The entries are a minute apart, so that the log written at the end
	// lives minutes by the Redis clock.
	t.Parallel()
	client, prefix := sharedClient(t)
	ctx := context.Background()
	clock := newClock()
	now := clock.Now()
	var log []int64
	for i := range 2000 {
		log = append(log, now.Add(-time.Duration(2000-i)*time.Minute).UnixMicro())
	}
	writeLog(t, client, prefix+"k", "list", log)
	l := redislimit.New(client, redislimit.Config{Prefix: prefix, Timeout: 2 * time.Second})
	l.SetClock(clock.Now)
	const day = 24 * time.Hour
	res, err := l.Allow(ctx, "k", ratelimit.Rate{Limit: 5, Window: 2 * day})
	require.NoError(t, err)
	require.False(t, res.Allowed)
	// The fifth newest entry was 5 minutes old: it leaves the window in two
	// days less 5 minutes.
	assert.Equal(t, 2*day-5*time.Minute, res.RetryAfter)
	assert.Equal(t, 2*day-time.Minute, res.ResetAfter)
	got, form := readLog(t, client, prefix+"k")
	assert.Equal(t, "list", form)
	assert.Equal(t, log, got, "a refusal keeps the log")

	// Under a quota that admits, the log becomes packed with the entries
	// of the window that the quota looks at: the two of the last 3 minutes,
	// and the admission.
	res, err = l.Allow(ctx, "k", ratelimit.Rate{Limit: 5, Window: 3 * time.Minute})
	require.NoError(t, err)
	require.True(t, res.Allowed)
	assert.Equal(t, 2, res.Remaining)
	got, form = readLog(t, client, prefix+"k")
	assert.Equal(t, "packed", form)
	assert.Equal(t, []int64{now.Add(-2 * time.Minute).UnixMicro(), now.Add(-time.Minute).UnixMicro(), now.UnixMicro()}, got)
}
