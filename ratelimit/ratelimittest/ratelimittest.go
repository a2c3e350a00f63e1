// Package ratelimittest holds the conformance suites that every
// ratelimit.Limiter and ratelimit.ConnectionLimiter implementation passes.
// The implementations' own tests run them.
//
// The limiter suite reads the time from a [Clock] that it moves itself:
// every expectation is exact, and none depends on how fast the machine
// runs. Its windows are a minute or longer, so that backends which also
// expire state by their own clock (Redis key TTLs) keep it for the whole
// suite.
package ratelimittest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Clock is a manual clock: it stands still until Advance moves it. It is
// safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at the current time truncated to the second, so
// that the suite's times are whole microseconds (the Redis limiter's
// resolution) and plausible for backends that store absolute times.
func NewClock() *Clock {
	return &Clock{now: time.Now().Truncate(time.Second)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Limiters describes a Limiter implementation under test.
type Limiters struct {
	// New returns two limiters that share their state (two instances over
	// one backend, or the same in-process limiter twice) and read the time
	// of their decisions from now. It is called once per subtest, so state
	// never leaks between subtests.
	New func(t *testing.T, now func() time.Time) (a, b ratelimit.Limiter)
	// Gone reports whether the backend no longer holds state for key at the
	// time of the clock given to New (idle keys are evicted after their
	// window). Backends whose state expires by their own clock leave it nil
	// and set TTL.
	Gone func(t *testing.T, l ratelimit.Limiter, key string) bool
	// TTL returns the time to live of key's state right after an admission,
	// for backends that expire keys by their own clock; nil skips the check.
	TTL func(t *testing.T, key string) time.Duration
}

var keySeq atomic.Int64

// key returns a key unique to this process run, so that suites on a shared
// backend never see each other's keys.
func key(t *testing.T, name string) string {
	return fmt.Sprintf("%s/%s/%d/%d", t.Name(), name, time.Now().UnixNano(), keySeq.Add(1))
}

// RunLimiter runs the conformance suite of [ratelimit.Limiter] against
// impl.
func RunLimiter(t *testing.T, impl Limiters) {
	if impl.Gone == nil && impl.TTL == nil {
		t.Fatal("ratelimittest: Limiters needs Gone or TTL")
	}
	// newLimiters returns the limiters of a subtest and their clock.
	newLimiters := func(t *testing.T) (a, b ratelimit.Limiter, clock *Clock) {
		clock = NewClock()
		a, b = impl.New(t, clock.Now)
		return a, b, clock
	}

	t.Run("RemainingCountsTheCurrentRequest", func(t *testing.T) {
		a, _, clock := newLimiters(t)
		k := key(t, "k")
		rate := ratelimit.Rate{Limit: 5, Window: time.Minute}
		for want := 4; want >= 0; want-- {
			res := allow(t, a, k, rate)
			require.True(t, res.Allowed, "remaining %d", want)
			assert.Equal(t, ratelimit.Result{Allowed: true, Limit: 5, Remaining: want, ResetAfter: rate.Window}, res)
			clock.Advance(time.Second)
		}
		// Requests at 0, 1, 2, 3 and 4 s; now is 5 s.
		res := allow(t, a, k, rate)
		assert.Equal(t, ratelimit.Result{Limit: 5, RetryAfter: 55 * time.Second, ResetAfter: 59 * time.Second}, res)
	})

	t.Run("BurstIsBorrowedFromTheNextWindow", func(t *testing.T) {
		// Limit 3, Burst 2: m = 2, so at most 5 in any window and 6 in any
		// two windows.
		a, b, clock := newLimiters(t)
		k := key(t, "k")
		const w = time.Minute
		rate := ratelimit.Rate{Limit: 3, Burst: 2, Window: w}
		var remaining []int
		for i := range 5 {
			l := a
			if i%2 == 1 {
				l = b
			}
			res := allow(t, l, k, rate)
			require.True(t, res.Allowed, "request %d", i+1)
			assert.Equal(t, 5, res.Limit)
			remaining = append(remaining, res.Remaining)
		}
		assert.Equal(t, []int{4, 3, 2, 1, 0}, remaining, "an idle key may burst Limit+Burst")
		res := allow(t, a, k, rate)
		require.False(t, res.Allowed, "the request after Limit+Burst")
		assert.Equal(t, 5, res.Limit)
		assert.Equal(t, w, res.RetryAfter, "the burst leaves the window")
		assert.Equal(t, 2*w, res.ResetAfter, "the full quota is back after two windows")

		// One window later only Limit*2-5 = 1 more is admitted: the burst
		// was borrowed from this window.
		clock.Advance(w + 6*time.Second)
		res = allow(t, b, k, rate)
		require.True(t, res.Allowed, "the rest of two windows' quota")
		assert.Equal(t, 0, res.Remaining)
		res = allow(t, a, k, rate)
		require.False(t, res.Allowed, "6 in two windows")
		assert.Equal(t, w-6*time.Second, res.RetryAfter, "the burst leaves the two windows")

		// Just before two windows after the burst it is still refused; then
		// the window holds 1 of 5.
		clock.Advance(w - 6*time.Second - time.Microsecond)
		require.False(t, allow(t, b, k, rate).Allowed, "the burst is still in the two windows")
		clock.Advance(time.Microsecond)
		remaining = remaining[:0]
		for {
			res := allow(t, a, k, rate)
			if !res.Allowed {
				break
			}
			remaining = append(remaining, res.Remaining)
		}
		assert.Equal(t, []int{3, 2, 1, 0}, remaining)
	})

	t.Run("BurstAboveLimit", func(t *testing.T) {
		// Limit 2, Burst 3: m = 3, at most 5 in a window and 6 in three.
		a, b, clock := newLimiters(t)
		k := key(t, "k")
		const w = time.Minute
		rate := ratelimit.Rate{Limit: 2, Burst: 3, Window: w}
		for i := range 5 {
			require.True(t, allow(t, a, k, rate).Allowed, "request %d", i+1)
		}
		require.False(t, allow(t, b, k, rate).Allowed)
		clock.Advance(w + 10*time.Second)
		require.True(t, allow(t, b, k, rate).Allowed, "the sixth of three windows")
		res := allow(t, a, k, rate)
		require.False(t, res.Allowed)
		assert.Equal(t, 2*w-10*time.Second, res.RetryAfter, "the burst leaves the three windows")
	})

	t.Run("SteadyTrafficUnderTheLimitIsNeverRefusedByTheBurst", func(t *testing.T) {
		a, b, clock := newLimiters(t)
		k := key(t, "k")
		rate := ratelimit.Rate{Limit: 4, Burst: 2, Window: time.Minute}
		for i := range 14 {
			l := a
			if i%2 == 1 {
				l = b
			}
			require.True(t, allow(t, l, k, rate).Allowed, "request %d", i+1)
			clock.Advance(rate.Window/4 + time.Second) // a little under Limit per Window
		}
	})

	t.Run("ARefusalForgetsNothing", func(t *testing.T) {
		// A refusal under one rate keeps the entries another rate of the
		// same key still counts.
		a, b, clock := newLimiters(t)
		k := key(t, "k")
		const w = time.Minute
		burst := ratelimit.Rate{Limit: 2, Burst: 2, Window: w} // 4 in any two windows
		plain := ratelimit.Rate{Limit: 2, Window: w}
		require.True(t, allow(t, a, k, burst).Allowed)
		require.True(t, allow(t, b, k, burst).Allowed)
		clock.Advance(w / 2)
		require.True(t, allow(t, a, k, burst).Allowed)
		require.True(t, allow(t, b, k, burst).Allowed)
		clock.Advance(w/2 + w/5)
		require.False(t, allow(t, a, k, plain).Allowed, "two in the last window")
		require.False(t, allow(t, b, k, burst).Allowed, "still four in the last two windows")
	})

	t.Run("KeysAreIsolated", func(t *testing.T) {
		a, b, _ := newLimiters(t)
		k1, k2 := key(t, "one"), key(t, "two")
		rate := ratelimit.Rate{Limit: 2, Window: time.Minute}
		for range 2 {
			require.True(t, allow(t, a, k1, rate).Allowed)
		}
		require.False(t, allow(t, a, k1, rate).Allowed)
		for want := 1; want >= 0; want-- {
			res := allow(t, b, k2, rate)
			require.True(t, res.Allowed)
			assert.Equal(t, want, res.Remaining)
		}
		require.False(t, allow(t, b, k2, rate).Allowed)
	})

	t.Run("InvalidRate", func(t *testing.T) {
		a, _, _ := newLimiters(t)
		for _, rate := range []ratelimit.Rate{
			{Limit: 0, Window: time.Second},
			{Limit: -1, Window: time.Second},
			{Limit: 1, Window: 0},
			{Limit: 1, Window: time.Second, Burst: -1},
			// Overflows: Limit+Burst, m*Limit, m*Window.
			{Limit: math.MaxInt, Window: time.Second, Burst: 1},
			{Limit: math.MaxInt, Window: time.Second, Burst: 2},
			{Limit: math.MaxInt/2 + 1, Window: time.Second, Burst: 1},
			{Limit: 1, Window: time.Hour, Burst: math.MaxInt / 2},
		} {
			_, err := a.Allow(context.Background(), key(t, "k"), rate)
			assert.ErrorIs(t, err, ratelimit.ErrInvalidRate, "%v", rate)
		}
		// The limiter still works afterwards (no lock left held).
		assert.True(t, allow(t, a, key(t, "after"), ratelimit.PerMinute(1)).Allowed)
	})

	t.Run("ExactAdmissionUnderConcurrency", func(t *testing.T) {
		// 20 runs; in each, 16 goroutines over two instances race for one
		// fresh key inside one window (the clock stands still): exactly
		// Limit are admitted.
		a, b, _ := newLimiters(t)
		rate := ratelimit.Rate{Limit: 25, Window: time.Hour}
		over := 0
		for run := range 20 {
			k := key(t, fmt.Sprintf("run%d", run))
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for g := range 16 {
				l := a
				if g%2 == 1 {
					l = b
				}
				wg.Go(func() {
					for range 8 {
						res, err := l.Allow(context.Background(), k, rate)
						if err != nil {
							t.Error(err)
							return
						}
						if res.Allowed {
							allowed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			n := int(allowed.Load())
			if n > rate.Limit {
				over += n - rate.Limit
			}
			assert.Equal(t, rate.Limit, n, "run %d", run)
		}
		assert.Zero(t, over, "over-admission across 20 runs")
	})

	t.Run("NeverMoreThanQuotaInAnyWindow", func(t *testing.T) {
		// Steady concurrent load over several windows: after each call its
		// goroutine moves the clock on by a fortieth of the window. An
		// admission happened at a time of the clock between the start and
		// the end of its call; admissions whose whole call fits in
		// [s, s+Window) certainly happened in one window, so there are at
		// most Quota of them for every s.
		a, b, clock := newLimiters(t)
		k := key(t, "k")
		rate := ratelimit.Rate{Limit: 8, Burst: 2, Window: time.Minute}
		type call struct{ start, end time.Time }
		var mu sync.Mutex
		var admitted []call
		deadline := clock.Now().Add(3*rate.Window + rate.Window/4)
		var wg sync.WaitGroup
		for g := range 6 {
			l := a
			if g%2 == 1 {
				l = b
			}
			wg.Go(func() {
				for {
					start := clock.Now()
					if !start.Before(deadline) {
						return
					}
					res, err := l.Allow(context.Background(), k, rate)
					end := clock.Now()
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						mu.Lock()
						admitted = append(admitted, call{start, end})
						mu.Unlock()
					}
					clock.Advance(rate.Window / 40)
				}
			})
		}
		wg.Wait()
		slices.SortFunc(admitted, func(x, y call) int { return x.start.Compare(y.start) })
		worst := 0
		for i, c := range admitted {
			n := 0
			for _, d := range admitted[i:] {
				if d.end.Sub(c.start) < rate.Window {
					n++
				}
			}
			worst = max(worst, n)
		}
		assert.LessOrEqual(t, worst, rate.Quota(), "admissions certainly inside one window")
		// Limit 8, Burst 2: at most 16 in any two windows.
		hspan, hquota := rate.Sustained()
		worst = 0
		for i, c := range admitted {
			n := 0
			for _, d := range admitted[i:] {
				if d.end.Sub(c.start) < hspan {
					n++
				}
			}
			worst = max(worst, n)
		}
		assert.LessOrEqual(t, worst, hquota, "admissions certainly inside two windows")
		// The limiter also keeps admitting: Limit per window, sustained.
		assert.GreaterOrEqual(t, len(admitted), 3*rate.Limit, "admissions over 3 windows")
	})

	t.Run("RetryAfterAndReset", func(t *testing.T) {
		a, b, clock := newLimiters(t)
		k := key(t, "k")
		const w = time.Minute
		rate := ratelimit.Rate{Limit: 3, Window: w}
		require.True(t, allow(t, a, k, rate).Allowed)
		clock.Advance(20 * time.Second)
		require.True(t, allow(t, b, k, rate).Allowed)
		require.True(t, allow(t, a, k, rate).Allowed)
		denied := allow(t, b, k, rate)
		require.False(t, denied.Allowed)
		// The oldest admission (at 0) leaves the window w after it was
		// made; all are back when the newest (at 20 s) leaves it.
		assert.Equal(t, ratelimit.Result{Limit: 3, RetryAfter: w - 20*time.Second, ResetAfter: w}, denied)

		// Halfway there, and a microsecond before RetryAfter, it is still
		// refused.
		clock.Advance(denied.RetryAfter / 2)
		require.False(t, allow(t, a, k, rate).Allowed, "halfway to RetryAfter")
		clock.Advance(denied.RetryAfter/2 - time.Microsecond)
		require.False(t, allow(t, a, k, rate).Allowed, "just before RetryAfter")

		// At RetryAfter exactly one slot is free.
		clock.Advance(time.Microsecond)
		res := allow(t, a, k, rate)
		require.True(t, res.Allowed, "at RetryAfter")
		assert.Equal(t, 0, res.Remaining)
		again := allow(t, b, k, rate)
		require.False(t, again.Allowed)
		// Next: the two made at 20 s; the newest was made now.
		assert.Equal(t, ratelimit.Result{Limit: 3, RetryAfter: 20 * time.Second, ResetAfter: w}, again)

		// After ResetAfter the whole quota is back.
		clock.Advance(again.ResetAfter)
		res = allow(t, a, k, rate)
		require.True(t, res.Allowed)
		assert.Equal(t, rate.Limit-1, res.Remaining)
	})

	t.Run("IdleKeysExpire", func(t *testing.T) {
		a, _, clock := newLimiters(t)
		k := key(t, "k")
		rate := ratelimit.Rate{Limit: 3, Window: time.Hour}
		require.True(t, allow(t, a, k, rate).Allowed)
		if impl.TTL != nil {
			// The backend's own clock runs during the test: the bounds
			// allow for an hour of it.
			ttl := impl.TTL(t, k)
			assert.Greater(t, ttl, time.Duration(0), "TTL after an admission")
			assert.LessOrEqual(t, ttl, rate.Window, "TTL after an admission")
		}
		if impl.Gone != nil {
			require.False(t, impl.Gone(t, a, k), "state right after an admission")
			clock.Advance(rate.Window - time.Microsecond)
			require.False(t, impl.Gone(t, a, k), "state of a key inside its window")
			clock.Advance(time.Microsecond)
			assert.True(t, impl.Gone(t, a, k), "state of a key idle for a window")
		}

		// With a burst the log lives two windows.
		k = key(t, "burst")
		rate.Burst = 1
		require.True(t, allow(t, a, k, rate).Allowed)
		if impl.TTL != nil {
			ttl := impl.TTL(t, k)
			assert.Greater(t, ttl, rate.Window, "TTL after an admission with burst")
			assert.LessOrEqual(t, ttl, 2*rate.Window, "TTL after an admission with burst")
		}
		if impl.Gone != nil {
			clock.Advance(rate.Window + time.Minute)
			require.False(t, impl.Gone(t, a, k), "a burst log outlives one window")
			clock.Advance(rate.Window - time.Minute)
			assert.True(t, impl.Gone(t, a, k), "state of a key idle for two windows")
		}
	})
}

func allow(t *testing.T, l ratelimit.Limiter, key string, rate ratelimit.Rate) ratelimit.Result {
	t.Helper()
	res, err := l.Allow(context.Background(), key, rate)
	require.NoError(t, err)
	return res
}

// Connections describes a ConnectionLimiter implementation under test.
type Connections struct {
	// New returns two limiters that share their state; called once per
	// subtest.
	New func(t *testing.T) (a, b ratelimit.ConnectionLimiter)
}

// RunConnections runs the conformance suite of
// [ratelimit.ConnectionLimiter] against impl.
func RunConnections(t *testing.T, impl Connections) {
	ctx := context.Background()

	t.Run("CapIsExactUnderConcurrentAcquire", func(t *testing.T) {
		a, b := impl.New(t)
		for run := range 20 {
			user := key(t, fmt.Sprintf("user%d", run))
			var ok atomic.Int64
			var wg sync.WaitGroup
			for g := range 24 {
				l := a
				if g%2 == 1 {
					l = b
				}
				wg.Go(func() {
					got, err := l.Acquire(ctx, user, fmt.Sprintf("conn%d", g), 5)
					if err != nil {
						t.Error(err)
						return
					}
					if got {
						ok.Add(1)
					}
				})
			}
			wg.Wait()
			assert.Equal(t, int64(5), ok.Load(), "run %d", run)
		}
	})

	t.Run("ReleaseFreesOnceAndIsIdempotent", func(t *testing.T) {
		a, b := impl.New(t)
		user := key(t, "user")
		for i := range 3 {
			ok, err := a.Acquire(ctx, user, fmt.Sprint("c", i), 3)
			require.NoError(t, err)
			require.True(t, ok)
		}
		ok, err := b.Acquire(ctx, user, "c3", 3)
		require.NoError(t, err)
		require.False(t, ok, "over the cap")

		require.NoError(t, b.Release(ctx, user, "c0"))
		require.NoError(t, a.Release(ctx, user, "c0"), "second release")
		require.NoError(t, a.Release(ctx, user, "never-acquired"))

		ok, err = b.Acquire(ctx, user, "c3", 3)
		require.NoError(t, err)
		require.True(t, ok, "the released slot")
		ok, err = a.Acquire(ctx, user, "c4", 3)
		require.NoError(t, err)
		require.False(t, ok, "a double release frees one slot only")
	})

	t.Run("AcquireIsIdempotentPerConnection", func(t *testing.T) {
		a, b := impl.New(t)
		user := key(t, "user")
		for range 3 {
			ok, err := a.Acquire(ctx, user, "same", 2)
			require.NoError(t, err)
			require.True(t, ok)
		}
		ok, err := b.Acquire(ctx, user, "other", 2)
		require.NoError(t, err)
		require.True(t, ok, "one slot is left")
	})

	t.Run("Renew", func(t *testing.T) {
		a, b := impl.New(t)
		user := key(t, "user")
		ok, err := a.Acquire(ctx, user, "c", 1)
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, a.Renew(ctx, user, "c"))
		require.NoError(t, b.Release(ctx, user, "c"))
		require.ErrorIs(t, a.Renew(ctx, user, "c"), ratelimit.ErrNotHeld)
	})

	t.Run("UsersAreIsolated", func(t *testing.T) {
		a, _ := impl.New(t)
		u1, u2 := key(t, "u1"), key(t, "u2")
		ok, err := a.Acquire(ctx, u1, "c", 1)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = a.Acquire(ctx, u2, "c", 1)
		require.NoError(t, err)
		require.True(t, ok)
	})
}
