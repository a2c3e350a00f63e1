package main

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1 << 62} {
		i := bucketOf(v)
		require.Less(t, i, histBuckets)
		assert.GreaterOrEqual(t, i, prev, "buckets grow with values")
		prev = i
		high := bucketHigh(i)
		assert.GreaterOrEqual(t, high, v)
		assert.LessOrEqual(t, float64(high-v), float64(v)/64+1, "within 1/64 of %d", v)
		assert.Equal(t, i, bucketOf(high))
		if i > 0 {
			assert.Less(t, bucketHigh(i-1), v)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 10000)
	for i := range vals {
		vals[i] = time.Duration(rng.ExpFloat64() * float64(300*time.Microsecond))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		assert.InEpsilon(t, float64(exact), float64(got), 0.02, "q=%v", q)
	}
	assert.Equal(t, vals[len(vals)-1], h.Max())
	assert.Equal(t, vals[len(vals)-1], h.Quantile(1))
	assert.EqualValues(t, len(vals), h.Count())
	assert.Positive(t, h.Mean())

	var empty histogram
	assert.Zero(t, empty.Quantile(0.5))
	assert.Zero(t, empty.Mean())
	empty.Record(-time.Second)
	assert.Zero(t, empty.Max())
}

func TestProcParsers(t *testing.T) {
	cpu, err := parseStatCPU([]byte("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200 18446744073709551615\n"))
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, cpu)
	_, err = parseStatCPU([]byte("garbage"))
	assert.Error(t, err)

	rss, err := parseStatusRSS([]byte("Name:\tx\nVmPeak:\t 1 kB\nVmRSS:\t   12345 kB\nThreads: 3\n"))
	require.NoError(t, err)
	assert.EqualValues(t, 12345, rss)
	_, err = parseStatusRSS([]byte("Name: x\n"))
	assert.Error(t, err)

	s, err := readProc(1)
	if err == nil {
		assert.Positive(t, s.rssKB+1)
	}

	for text, want := range map[string]int64{
		"# TYPE go_goroutines gauge\ngo_goroutines 42\n":           42,
		"go_goroutines_other 3\ngo_goroutines{job=\"x\"} 9 1700\n": 9,
		"go_goroutines 1.5e3\n":                                    1500,
	} {
		got, err := parseGoroutines(strings.NewReader(text))
		require.NoError(t, err, text)
		assert.Equal(t, want, got, text)
	}
	_, err = parseGoroutines(strings.NewReader("go_threads 3\n"))
	assert.Error(t, err)
}
