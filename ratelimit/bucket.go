package ratelimit

import "time"

// Bucket is a token bucket for per-connection message limits. Tokens refill
// at Rate.Limit per Rate.Window; the bucket holds at most Limit+Burst tokens
// and starts full. Each admitted message takes one token.
//
// Bucket is a small value without locks: it belongs to one goroutine (a
// connection's read loop). Take costs no allocation. The zero Bucket admits
// everything.
type Bucket struct {
	interval time.Duration // time to refill one token
	span     time.Duration // interval * capacity
	origin   time.Time     // first Take; times are measured from it (monotonic)
	tat      time.Duration // theoretical arrival time of the next token, since origin
}

// NewBucket returns a full Bucket for rate. It panics when rate is invalid,
// which is a configuration mistake.
func NewBucket(rate Rate) Bucket {
	if err := rate.Validate(); err != nil {
		panic("ratelimit: NewBucket: " + err.Error())
	}
	interval := max(rate.Window/time.Duration(rate.Limit), 1)
	return Bucket{interval: interval, span: interval * time.Duration(rate.Quota())}
}

// Take takes one token at time now. It reports whether one was available
// and, when not, how long until one is.
func (b *Bucket) Take(now time.Time) (ok bool, retryAfter time.Duration) {
	if b.interval == 0 {
		return true, 0
	}
	if b.origin.IsZero() {
		b.origin = now
	}
	t := now.Sub(b.origin)
	tat := max(b.tat, t) + b.interval
	if wait := tat - t - b.span; wait > 0 {
		return false, wait
	}
	b.tat = tat
	return true, 0
}
