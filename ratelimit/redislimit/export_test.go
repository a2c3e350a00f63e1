package redislimit

import "time"

// SetPackedMax sets the most entries a packed log holds, so that tests reach
// the list form with short logs (0: every log is a list).
func (l *Limiter) SetPackedMax(n int) { l.packedMax = n }

// SetClock makes l decide by now instead of the Redis clock, so that tests
// choose the time of every decision.
func (l *Limiter) SetClock(now func() time.Time) { l.clock = now }

// SetClock makes c's leases follow now instead of the Redis clock.
func (c *Connections) SetClock(now func() time.Time) { c.clock = now }
