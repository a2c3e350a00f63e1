package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MemoryConfig configures [NewMemory]. The zero value means the documented
// defaults.
type MemoryConfig struct {
	// Shards is the number of independently locked shards (default 64).
	Shards int
	// MaxKeys bounds the number of keys tracked (default 100000). When a
	// shard is full, idle keys are evicted first; if there are none, the
	// key whose last admitted request is oldest is dropped (its history is
	// forgotten, which can admit more than the limit for that key). Such a
	// drop scans the shard, so size MaxKeys above the number of keys active
	// in one window.
	MaxKeys int
	// SweepInterval is how often a shard drops its idle keys, lazily, during
	// a call that touches it (default 1 minute). No goroutine is started.
	SweepInterval time.Duration
	// Name is the limiter label of rate_limit_decisions_total (default
	// "memory"); give each limiter of an application its own.
	Name string
	// Registerer receives rate_limit_decisions_total{limiter=Name}; nil
	// means no metrics.
	Registerer prometheus.Registerer
}

// Memory is the in-process sliding-window [Limiter]. It keeps the time of
// every admitted request of a key that is still inside the key's window (at
// most Limit per key, m*Limit with a burst: see [Rate]), in shards each
// guarded by a mutex. A key whose requests have all left the window is idle;
// idle keys are evicted lazily, so Memory needs no goroutine and no Close.
type Memory struct {
	shards   []memShard
	seed     maphash.Seed
	perShard int
	sweep    time.Duration
	start    time.Time
	now      func() time.Duration // monotonic time since start; replaced in tests
	count    DecisionCounters
}

type memShard struct {
	mu        sync.Mutex
	keys      map[string]*window
	lastSweep time.Duration
}

// window is the log of one key: a ring of admission times (nanoseconds
// since Memory.start), oldest at head. The ring grows with use up to the
// quota, so memory follows the requests actually in the window.
type window struct {
	stamps []time.Duration
	head   int
	n      int
	span   time.Duration // the longer span of the last admission: the key is idle once its newest entry left it
}

// NewMemory returns a Memory configured by cfg.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.Shards <= 0 {
		cfg.Shards = 64
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100000
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.Name == "" {
		cfg.Name = "memory"
	}
	m := &Memory{
		shards:   make([]memShard, cfg.Shards),
		seed:     maphash.MakeSeed(),
		perShard: max(1, cfg.MaxKeys/cfg.Shards),
		sweep:    cfg.SweepInterval,
		start:    time.Now(),
		count:    NewMetrics(cfg.Registerer).Decisions(cfg.Name),
	}
	m.now = func() time.Duration { return time.Since(m.start) }
	for i := range m.shards {
		m.shards[i].keys = make(map[string]*window)
	}
	return m
}

// Allow admits the request when rate admits it (see [Rate]) given the
// requests of key admitted before, and records it.
func (m *Memory) Allow(_ context.Context, key string, rate Rate) (Result, error) {
	if err := rate.Validate(); err != nil {
		return Result{}, err
	}
	s := &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
	s.mu.Lock()
	now := m.now()
	if now-s.lastSweep >= m.sweep {
		s.dropIdle(now)
		s.lastSweep = now
	}
	w := s.keys[key]
	if w == nil {
		if len(s.keys) >= m.perShard {
			s.makeRoom(now, m.perShard)
		}
		w = &window{stamps: make([]time.Duration, min(rate.Quota(), 4))}
		s.keys[key] = w
	}
	res := w.allow(now, rate)
	s.mu.Unlock()
	m.count.Count(res.Allowed, nil)
	return res, nil
}

// Len returns the number of keys with requests inside their window, after
// evicting the idle ones.
func (m *Memory) Len() int {
	now := m.now()
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.dropIdle(now)
		s.lastSweep = now
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}

func (w *window) allow(now time.Duration, rate Rate) Result {
	quota, span := rate.Quota(), rate.Window
	hspan, hquota := rate.Sustained()
	// k: the requests that left the longer span (t <= now-hspan). They are
	// dropped on admission only, as in the Redis log: a refusal changes
	// nothing, whatever rate the key is used with next.
	k := 0
	for k < w.n && w.at(k) <= now-hspan {
		k++
	}
	n := w.n - k
	if n < hquota && (n < quota || w.at(w.n-quota) <= now-span) {
		// Admitted. Without burst every entry is in the window; with it,
		// count those that are.
		inWindow := n
		if hspan > span {
			inWindow = w.n - w.firstAfter(k, now-span)
		}
		w.head = (w.head + k) % len(w.stamps)
		w.n = n
		if n == len(w.stamps) { // the ring grows with use, up to hquota
			w.grow(min(max(2*n, 4), hquota))
		}
		w.stamps[(w.head+n)%len(w.stamps)] = now
		w.n++
		w.span = hspan // the key's lifetime, like the Redis key's time to live
		return Result{Allowed: true, Limit: quota, Remaining: min(quota-inWindow, hquota-n) - 1,
			ResetAfter: w.resetAfter(now, 0, span, quota, hspan, hquota)}
	}
	// Refused: the next admission happens when the entries that keep a
	// condition from holding have left its span.
	var retry time.Duration
	if n >= hquota {
		retry = w.at(w.n-hquota) + hspan - now
	}
	if n >= quota {
		retry = max(retry, w.at(w.n-quota)+span-now)
	}
	return Result{Limit: quota, RetryAfter: retry, ResetAfter: w.resetAfter(now, k, span, quota, hspan, hquota)}
}

// at returns the i-th entry, oldest first.
func (w *window) at(i int) time.Duration { return w.stamps[(w.head+i)%len(w.stamps)] }

// firstAfter returns the index of the oldest entry from lo on that is later
// than t (w.n when there is none).
func (w *window) firstAfter(lo int, t time.Duration) int {
	hi := w.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if w.at(mid) > t {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// resetAfter returns the time until the full quota is available again:
// every entry has left the window and at most hquota-quota remain in the
// longer span. Entries before index k have left the longer span.
func (w *window) resetAfter(now time.Duration, k int, span time.Duration, quota int, hspan time.Duration, hquota int) time.Duration {
	if w.n == k {
		return 0
	}
	reset := w.at(w.n-1) + span - now
	if j := w.n - (hquota - quota) - 1; hspan > span && j >= k {
		reset = max(reset, w.at(j)+hspan-now)
	}
	return reset
}

func (w *window) grow(size int) {
	s := make([]time.Duration, size)
	for i := range w.n {
		s[i] = w.stamps[(w.head+i)%len(w.stamps)]
	}
	w.stamps, w.head = s, 0
}

// idle reports whether every request of w left its window.
func (w *window) idle(now time.Duration) bool {
	return w.n == 0 || w.stamps[(w.head+w.n-1)%len(w.stamps)] <= now-w.span
}

func (s *memShard) dropIdle(now time.Duration) {
	for k, w := range s.keys {
		if w.idle(now) {
			delete(s.keys, k)
		}
	}
}

// makeRoom frees one slot in a full shard: idle keys first, else the key
// whose newest request is oldest.
func (s *memShard) makeRoom(now time.Duration, limit int) {
	s.dropIdle(now)
	s.lastSweep = now
	if len(s.keys) < limit {
		return
	}
	var victim string
	var newest time.Duration
	first := true
	for k, w := range s.keys {
		t := w.stamps[(w.head+w.n-1)%len(w.stamps)]
		if first || t < newest {
			victim, newest, first = k, t, false
		}
	}
	delete(s.keys, victim)
}
