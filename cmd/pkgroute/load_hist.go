package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets (HDR style): exact
// below 128 ns, then 64 buckets per power of two, so that every recorded
// value is reported within 1.6 % of itself. Its memory is fixed whatever
// the number of samples; Record is safe for concurrent use.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // exact values below this
	histHalf    = histSub / 2      // buckets per power of two above it
	histBuckets = histSub + (64-histSubBits)*histHalf
)

// bucketOf returns the bucket index of v (nanoseconds).
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits // >= 1
	m := v >> uint(shift)                // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + int(m-histHalf)
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := (i-histSub)/histHalf + 1
	m := uint64((i-histSub)%histHalf + histHalf)
	return (m+1)<<uint(shift) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of recorded durations.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Quantile returns the smallest bucket bound below which at least q
// (0..1) of the recorded durations fall, capped at the maximum; zero when
// nothing was recorded.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketHigh(i), h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// Max returns the largest recorded duration.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the mean of the recorded durations.
func (h *histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}
