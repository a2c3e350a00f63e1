package ratelimit_test

import (
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		rate ratelimit.Rate
		// takes at offsets from t0, and the expected outcome of each
		takes []time.Duration
		ok    []bool
		retry []time.Duration
	}{
		{
			name:  "full bucket of Limit, then one token per Window/Limit",
			rate:  ratelimit.Rate{Limit: 2, Window: time.Second},
			takes: []time.Duration{0, 0, 0, 499 * time.Millisecond, 500 * time.Millisecond, 600 * time.Millisecond},
			ok:    []bool{true, true, false, false, true, false},
			retry: []time.Duration{0, 0, 500 * time.Millisecond, time.Millisecond, 0, 400 * time.Millisecond},
		},
		{
			name:  "burst adds to what can be taken at once",
			rate:  ratelimit.Rate{Limit: 1, Window: time.Second, Burst: 2},
			takes: []time.Duration{0, 0, 0, 0, time.Second},
			ok:    []bool{true, true, true, false, true},
			retry: []time.Duration{0, 0, 0, time.Second, 0},
		},
		{
			name:  "idle time refills up to the capacity only",
			rate:  ratelimit.Rate{Limit: 2, Window: time.Second},
			takes: []time.Duration{0, time.Hour, time.Hour, time.Hour},
			ok:    []bool{true, true, true, false},
			retry: []time.Duration{0, 0, 0, 500 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ratelimit.NewBucket(tt.rate)
			for i, at := range tt.takes {
				ok, retry := b.Take(t0.Add(at))
				assert.Equal(t, tt.ok[i], ok, "take %d at %v", i, at)
				assert.Equal(t, tt.retry[i], retry, "retry of take %d at %v", i, at)
			}
		})
	}
}

func TestBucketZeroValueAdmitsEverything(t *testing.T) {
	t.Parallel()
	var b ratelimit.Bucket
	for range 1000 {
		ok, _ := b.Take(time.Now())
		require.True(t, ok)
	}
}

func TestNewBucketPanicsOnInvalidRate(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { ratelimit.NewBucket(ratelimit.Rate{}) })
}

func TestBucketTakeDoesNotAllocate(t *testing.T) {
	b := ratelimit.NewBucket(ratelimit.Rate{Limit: 100, Window: time.Second})
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() { b.Take(now) })
	assert.Zero(t, allocs)
}

func BenchmarkBucketTake(b *testing.B) {
	bucket := ratelimit.NewBucket(ratelimit.Rate{Limit: 1000, Window: time.Second, Burst: 100})
	b.ReportAllocs()
	for b.Loop() {
		bucket.Take(time.Now())
	}
}
