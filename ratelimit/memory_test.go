package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/ratelimit/ratelimittest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	ratelimittest.RunLimiter(t, ratelimittest.Limiters{
		New: func(t *testing.T, now func() time.Time) (ratelimit.Limiter, ratelimit.Limiter) {
			m := ratelimit.NewMemory(ratelimit.MemoryConfig{Shards: 4})
			m.SetClock(now)
			return m, m
		},
		Gone: func(t *testing.T, l ratelimit.Limiter, key string) bool {
			return l.(*ratelimit.Memory).Len() == 0
		},
	})
}

func TestMemoryConnectionsConformance(t *testing.T) {
	t.Parallel()
	ratelimittest.RunConnections(t, ratelimittest.Connections{
		New: func(t *testing.T) (ratelimit.ConnectionLimiter, ratelimit.ConnectionLimiter) {
			c := ratelimit.NewMemoryConnections()
			return c, c
		},
	})
}

func TestMemoryBoundsKeys(t *testing.T) {
	t.Parallel()
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{Shards: 2, MaxKeys: 10})
	rate := ratelimit.Rate{Limit: 1, Window: time.Hour}
	for i := range 100 {
		res, err := m.Allow(context.Background(), fmt.Sprint("key", i), rate)
		require.NoError(t, err)
		require.True(t, res.Allowed)
	}
	assert.LessOrEqual(t, m.Len(), 10)
	// The most recent key is still tracked.
	res, err := m.Allow(context.Background(), "key99", rate)
	require.NoError(t, err)
	assert.False(t, res.Allowed)
}

func TestMemoryCountsDecisions(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{Registerer: reg})
	rate := ratelimit.Rate{Limit: 2, Window: time.Minute}
	for range 3 {
		_, err := m.Allow(context.Background(), "k", rate)
		require.NoError(t, err)
	}
	// A second limiter on the same registry shares the collectors.
	ratelimit.NewMemory(ratelimit.MemoryConfig{Registerer: reg})
	n, err := testutil.GatherAndCount(reg, "rate_limit_decisions_total")
	require.NoError(t, err)
	assert.Equal(t, 3, n, "allowed, denied and error series")
	mf, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range mf {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "outcome" {
					got[l.GetValue()] = metric.GetCounter().GetValue()
				}
			}
		}
	}
	assert.Equal(t, map[string]float64{"allowed": 2, "denied": 1, "error": 0}, got)
}

func TestMemoryQuotaChangeKeepsHistory(t *testing.T) {
	t.Parallel()
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	clock := ratelimittest.NewClock()
	m.SetClock(clock.Now)
	ctx := context.Background()
	small := ratelimit.Rate{Limit: 2, Window: time.Minute}
	big := ratelimit.Rate{Limit: 4, Window: time.Minute}
	for range 2 {
		res, err := m.Allow(ctx, "k", small)
		require.NoError(t, err)
		require.True(t, res.Allowed)
	}
	for want := 1; want >= 0; want-- {
		res, err := m.Allow(ctx, "k", big)
		require.NoError(t, err)
		require.True(t, res.Allowed)
		assert.Equal(t, want, res.Remaining)
	}
	res, err := m.Allow(ctx, "k", small)
	require.NoError(t, err)
	assert.False(t, res.Allowed)
	assert.Equal(t, time.Minute, res.RetryAfter)
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("user:", i)
	}
	rate := ratelimit.Rate{Limit: 100, Window: time.Second}
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.Allow(ctx, keys[i&1023], rate)
		i++
	}
}

func BenchmarkMemoryAllowParallel(b *testing.B) {
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("user:", i)
	}
	rate := ratelimit.Rate{Limit: 100, Window: time.Second}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			_, _ = m.Allow(ctx, keys[i&1023], rate)
			i++
		}
	})
}
