package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock drives Memory's monotonic clock.
type fakeClock struct{ t time.Duration }

func newFakeMemory(cfg MemoryConfig) (*Memory, *fakeClock) {
	m := NewMemory(cfg)
	c := &fakeClock{}
	m.now = func() time.Duration { return c.t }
	return m, c
}

func TestMemorySlidingWindowExactTimes(t *testing.T) {
	m, clock := newFakeMemory(MemoryConfig{})
	ctx := context.Background()
	rate := Rate{Limit: 3, Window: 10 * time.Second}
	type step struct {
		at        time.Duration
		allowed   bool
		remaining int
		retry     time.Duration
		reset     time.Duration
	}
	for i, s := range []step{
		{at: 0, allowed: true, remaining: 2, reset: 10 * time.Second},
		{at: 2 * time.Second, allowed: true, remaining: 1, reset: 10 * time.Second},
		{at: 4 * time.Second, allowed: true, remaining: 0, reset: 10 * time.Second},
		{at: 5 * time.Second, allowed: false, retry: 5 * time.Second, reset: 9 * time.Second},
		{at: 10*time.Second - 1, allowed: false, retry: 1, reset: 4*time.Second + 1},
		{at: 10 * time.Second, allowed: true, remaining: 0, reset: 10 * time.Second}, // the request at 0 left
		{at: 11 * time.Second, allowed: false, retry: time.Second, reset: 9 * time.Second},
		{at: 30 * time.Second, allowed: true, remaining: 2, reset: 10 * time.Second},
	} {
		clock.t = s.at
		res, err := m.Allow(ctx, "k", rate)
		require.NoError(t, err)
		assert.Equal(t, Result{Allowed: s.allowed, Limit: 3, Remaining: s.remaining, RetryAfter: s.retry, ResetAfter: s.reset}, res, "step %d at %v", i, s.at)
	}
}

func TestMemoryEvictsIdleKeysLazily(t *testing.T) {
	m, clock := newFakeMemory(MemoryConfig{Shards: 1, SweepInterval: time.Minute})
	ctx := context.Background()
	rate := Rate{Limit: 1, Window: time.Second}
	for i := range 50 {
		_, err := m.Allow(ctx, fmt.Sprint("k", i), rate)
		require.NoError(t, err)
	}
	assert.Len(t, m.shards[0].keys, 50)
	clock.t = 30 * time.Second
	_, err := m.Allow(ctx, "fresh", rate)
	require.NoError(t, err)
	assert.Len(t, m.shards[0].keys, 51, "no sweep before the interval")
	clock.t = 61 * time.Second
	_, err = m.Allow(ctx, "another", rate)
	require.NoError(t, err)
	assert.Len(t, m.shards[0].keys, 1, "idle keys swept")
}

func TestMemoryFullShardDropsOldestActiveKey(t *testing.T) {
	m, clock := newFakeMemory(MemoryConfig{Shards: 1, MaxKeys: 3})
	ctx := context.Background()
	rate := Rate{Limit: 1, Window: time.Hour}
	for i, k := range []string{"a", "b", "c", "d"} {
		clock.t = time.Duration(i) * time.Second
		_, err := m.Allow(ctx, k, rate)
		require.NoError(t, err)
	}
	assert.Len(t, m.shards[0].keys, 3)
	assert.NotContains(t, m.shards[0].keys, "a")
	assert.Contains(t, m.shards[0].keys, "d")
}

func TestMemoryRingGrowsWithUse(t *testing.T) {
	m, clock := newFakeMemory(MemoryConfig{Shards: 1})
	ctx := context.Background()
	huge := Rate{Limit: 1_000_000, Window: time.Minute}
	_, err := m.Allow(ctx, "huge", huge)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(m.shards[0].keys["huge"].stamps), 4, "no allocation up to the quota")

	rate := Rate{Limit: 10, Window: 100 * time.Second}
	for i := range 10 {
		clock.t = time.Duration(i) * time.Second
		res, err := m.Allow(ctx, "k", rate)
		require.NoError(t, err)
		require.True(t, res.Allowed)
		assert.Equal(t, 9-i, res.Remaining)
	}
	assert.Len(t, m.shards[0].keys["k"].stamps, 10)
	clock.t = 50 * time.Second
	res, err := m.Allow(ctx, "k", rate)
	require.NoError(t, err)
	assert.Equal(t, Result{Limit: 10, RetryAfter: 50 * time.Second, ResetAfter: 59 * time.Second}, res)
	clock.t = 101 * time.Second // the requests at 0 and 1 left
	for range 2 {
		res, err = m.Allow(ctx, "k", rate)
		require.NoError(t, err)
		require.True(t, res.Allowed)
	}
	res, err = m.Allow(ctx, "k", rate)
	require.NoError(t, err)
	assert.Equal(t, Result{Limit: 10, RetryAfter: time.Second, ResetAfter: 100 * time.Second}, res)
}
