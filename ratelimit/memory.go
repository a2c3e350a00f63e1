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
// every admitted request of a key that is still inside the key's window
// (at most Limit+Burst per key), in shards each guarded by a mutex. A key
// whose requests have all left the window is idle; idle keys are evicted
// lazily, so Memory needs no goroutine and no Close.
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
	span   time.Duration // the window length of the last call
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

// Allow admits the request when fewer than rate.Quota() requests of key were
// admitted in the last rate.Window, and records it.
func (m *Memory) Allow(_ context.Context, key string, rate Rate) (Result, error) {
	if err := rate.Validate(); err != nil {
		return Result{}, err
	}
	quota := rate.Quota()
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
		w = &window{stamps: make([]time.Duration, min(quota, 4))}
		s.keys[key] = w
	}
	res := w.allow(now, rate.Window, quota)
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

func (w *window) allow(now, span time.Duration, quota int) Result {
	w.span = span
	// Drop the requests that left the window (t <= now-span).
	for w.n > 0 && w.stamps[w.head] <= now-span {
		w.head = (w.head + 1) % len(w.stamps)
		w.n--
	}
	if w.n < quota {
		if w.n == len(w.stamps) { // the ring grows with use, up to the quota
			w.grow(min(max(2*w.n, 4), quota))
		}
		w.stamps[(w.head+w.n)%len(w.stamps)] = now
		w.n++
		return Result{Allowed: true, Limit: quota, Remaining: quota - w.n, ResetAfter: span}
	}
	// Refused: the next admission happens when the request at index
	// n-quota (the oldest, unless the quota shrank) leaves the window.
	newest := w.stamps[(w.head+w.n-1)%len(w.stamps)]
	next := w.stamps[(w.head+w.n-quota)%len(w.stamps)]
	return Result{Limit: quota, ResetAfter: newest + span - now, RetryAfter: next + span - now}
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
