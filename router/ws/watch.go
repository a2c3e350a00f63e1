package ws

import (
	"sync"
	"sync/atomic"
	"time"
)

// watchShards spreads the registrations of inline serves over locks.
const watchShards = 16

// inlineWatch moves a connection's reading to a new goroutine when the
// request its reader serves inline runs longer than delay (see
// conn.readLoop). One timer serves the whole endpoint: it is armed while
// inline serves are registered and fires every delay, instead of a timer
// per request, whose arming would wake a thread of the runtime's poller on
// every request.
type inlineWatch struct {
	delay  time.Duration
	armed  atomic.Bool
	timer  *time.Timer
	next   atomic.Uint32
	pool   sync.Pool // *inlineServe
	shards [watchShards]watchShard
}

type watchShard struct {
	mu  sync.Mutex
	set map[*inlineServe]struct{}
}

// inlineServe is one request being served on its connection's reader.
type inlineServe struct {
	state   atomic.Int32 // 0 serving, 1 handed over, 2 done in time
	start   time.Time
	handoff func()
	shard   *watchShard
}

func newInlineWatch(delay time.Duration) *inlineWatch {
	w := &inlineWatch{delay: delay}
	for i := range w.shards {
		w.shards[i].set = make(map[*inlineServe]struct{})
	}
	w.pool.New = func() any { return new(inlineServe) }
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	return w
}

// shard returns a shard index for a new connection.
func (w *inlineWatch) shard() uint32 { return w.next.Add(1) % watchShards }

// begin registers an inline serve; handoff starts a new reader.
func (w *inlineWatch) begin(shard uint32, handoff func()) *inlineServe {
	s := w.pool.Get().(*inlineServe)
	s.state.Store(0)
	s.start = time.Now()
	s.handoff = handoff
	s.shard = &w.shards[shard]
	s.shard.mu.Lock()
	s.shard.set[s] = struct{}{}
	s.shard.mu.Unlock()
	if !w.armed.Load() && w.armed.CompareAndSwap(false, true) {
		w.timer.Reset(w.delay)
	}
	return s
}

// end unregisters s and reports whether the caller is still the reader.
func (w *inlineWatch) end(s *inlineServe) bool {
	if !s.state.CompareAndSwap(0, 2) {
		return false // handed over; fire unregistered it
	}
	s.shard.mu.Lock()
	delete(s.shard.set, s)
	s.shard.mu.Unlock()
	s.handoff, s.shard = nil, nil
	w.pool.Put(s)
	return true
}

// fire hands over the reading of every serve running longer than delay
// and keeps the timer armed while serves remain.
func (w *inlineWatch) fire() {
	now := time.Now()
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		for s := range sh.set {
			if now.Sub(s.start) >= w.delay && s.state.CompareAndSwap(0, 1) {
				delete(sh.set, s)
				go s.handoff()
			}
		}
		sh.mu.Unlock()
	}
	w.armed.Store(false)
	if w.pending() && w.armed.CompareAndSwap(false, true) {
		w.timer.Reset(w.delay)
	}
}

func (w *inlineWatch) pending() bool {
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		n := len(sh.set)
		sh.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

// stop disarms the timer.
func (w *inlineWatch) stop() { w.timer.Stop() }
