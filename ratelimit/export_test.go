package ratelimit

import "time"

// SetClock makes m read the time from now instead of the monotonic clock,
// so that tests choose the time of every decision.
func (m *Memory) SetClock(now func() time.Time) {
	origin := now()
	m.now = func() time.Duration { return now().Sub(origin) }
}
