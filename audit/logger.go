package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/prometheus/client_golang/prometheus"
)

// Policy is what Log does when the buffer is full.
type Policy int

// The policies.
const (
	// Wait up to Config.WaitTimeout for room, then drop (reason
	// "wait_timeout"). The default.
	Wait Policy = iota
	// Drop immediately (reason "queue_full").
	Drop
	// Block until there is room or the caller's context ends (reason
	// "canceled").
	Block
)

// DropReason says why entries were dropped.
type DropReason string

// The drop reasons.
const (
	DropQueueFull   DropReason = "queue_full"   // Drop policy, buffer full
	DropWaitTimeout DropReason = "wait_timeout" // Wait policy, no room within WaitTimeout
	DropCanceled    DropReason = "canceled"     // the caller's context ended while waiting
	DropClosed      DropReason = "closed"       // Log after Close
	DropShutdown    DropReason = "shutdown"     // still buffered when Close ran out of time
	DropRejected    DropReason = "rejected"     // the sink refuses the entry for good
)

var dropReasons = [...]DropReason{DropQueueFull, DropWaitTimeout, DropCanceled, DropClosed, DropShutdown, DropRejected}

// Errors of Log, Run and Close.
var (
	// ErrDropped is returned by Log when the entry was dropped; the error
	// names the reason.
	ErrDropped = errkind.New(errkind.Unavailable, "audit: entry dropped")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("audit: logger closed")
	// ErrRunning is returned by Run when the logger is already running.
	ErrRunning = errors.New("audit: logger already running")
)

// Pruner is implemented by sinks that delete old entries.
type Pruner interface {
	Prune(ctx context.Context, olderThan time.Duration) (int64, error)
}

// Config configures a Logger. The zero value of every field except Sink
// means the documented default.
type Config struct {
	// Sink stores the entries. Required.
	Sink Sink
	// QueueSize bounds the entries buffered: queued plus being written.
	// Default 10000.
	QueueSize int
	// BatchSize is the most entries per write. Default 100.
	BatchSize int
	// BatchTimeout is the longest the first entry of a batch waits for the
	// batch to fill. Default 1 s.
	BatchTimeout time.Duration
	// Writers is how many batches Run writes at the same time. Default 4;
	// always 1 when Chain is set, so that the chain is stored in order.
	Writers int
	// Policy is what Log does when the buffer is full. Default Wait.
	Policy Policy
	// WaitTimeout is how long Log waits for room under the Wait policy.
	// Default 1 s.
	WaitTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to write a
	// failed batch (doubling, with jitter). Defaults 50 ms and 2 s.
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds one write attempt. Default 5 s.
	WriteTimeout time.Duration
	// Redactor redacts entries in Log. Default NewRedactor().
	Redactor *Redactor
	// Chain links the entries into a hash chain (Entry.Seq, PrevHash,
	// Hash). With a ChainSink the chain continues from the stored head.
	Chain bool
	// ChainKey, when set, makes the chain an HMAC-SHA-256 chain.
	ChainKey []byte
	// Retention, when positive and the Sink is a Pruner, makes Run delete
	// entries older than Retention every PruneInterval (default 1 h).
	Retention     time.Duration
	PruneInterval time.Duration
	// Logger receives write failures and recoveries; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil means none.
	Registerer prometheus.Registerer
}

// Stats are the Logger's counters, read together. At any time
// Produced = Written + Dropped() + Pending + Waiting; once Close has
// returned, Pending and Waiting are 0.
type Stats struct {
	// Produced counts the entries given to Log.
	Produced uint64
	// Written counts the entries the sink stored.
	Written uint64
	// DroppedBy counts the dropped entries by reason.
	DroppedBy map[DropReason]uint64
	// Pending is the number of entries buffered (queued or being written).
	Pending int
	// Waiting is the number of entries held by Log calls waiting for room
	// in a full buffer (Wait and Block policies): produced, not yet
	// buffered or dropped.
	Waiting int
	// WriteErrors counts failed write attempts.
	WriteErrors uint64
}

// Dropped returns the number of dropped entries.
func (s Stats) Dropped() uint64 {
	var n uint64
	for _, v := range s.DroppedBy {
		n += v
	}
	return n
}

// Logger buffers entries and writes them to a Sink in batches. Log may be
// called from any goroutine; Run writes; Close flushes.
type Logger struct {
	cfg      Config
	log      *slog.Logger
	redactor *Redactor
	m        *metrics

	mu        sync.Mutex
	queue     []Entry
	inflight  int
	firstAt   time.Time // when the oldest queued entry's batch opened
	waiters   int
	space     chan struct{} // closed when room frees, for waiters
	wake      chan struct{} // wakes the writer (capacity 1)
	closing   chan struct{} // closed by Close
	closeDone chan struct{} // closed when the first Close returns
	closed    bool
	running   bool          // a writer (Run or Close) owns the write loop
	runDone   chan struct{} // closed when Run returns
	abandon   context.CancelFunc

	produced, written, writeErrors uint64
	dropped                        [len(dropReasons)]uint64
	dropErrs                       [len(dropReasons)]error // returned by Log, one per reason

	chain       chainer
	chainLoaded bool
}

// New returns a Logger for cfg. It panics when cfg.Sink is nil.
func New(cfg Config) *Logger {
	if cfg.Sink == nil {
		panic("audit: Config.Sink is nil")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = time.Second
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 50 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 2 * time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 4
	}
	if cfg.Chain {
		cfg.Writers = 1
	}
	if cfg.PruneInterval <= 0 {
		cfg.PruneInterval = time.Hour
	}
	l := &Logger{
		cfg:       cfg,
		log:       cfg.Logger,
		redactor:  cfg.Redactor,
		m:         newMetrics(cfg.Registerer),
		space:     make(chan struct{}),
		wake:      make(chan struct{}, 1),
		closing:   make(chan struct{}),
		closeDone: make(chan struct{}),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for i, r := range dropReasons {
		l.dropErrs[i] = fmt.Errorf("%w: %s", ErrDropped, r)
	}
	if l.redactor == nil {
		l.redactor = NewRedactor()
	}
	l.chain.key = cfg.ChainKey
	return l
}

// Log redacts e, fills its defaults (ID, Timestamp, Outcome) and queues it.
// It never calls the sink; when the buffer is full it follows the Policy
// (ctx bounds the waiting of Wait and Block). It returns an error wrapping
// ErrDropped when the entry was dropped.
func (l *Logger) Log(ctx context.Context, e Entry) error {
	e.normalize(l.redactor, time.Now())
	if l.m != nil {
		l.m.produced(e.Outcome)
	}
	l.mu.Lock()
	l.produced++
	if l.closed {
		return l.dropLocked(DropClosed)
	}
	if l.pendingLocked() < l.cfg.QueueSize {
		l.pushLocked(e)
		return nil
	}
	var timeout <-chan time.Time
	switch l.cfg.Policy {
	case Drop:
		return l.dropLocked(DropQueueFull)
	case Wait:
		t := time.NewTimer(l.cfg.WaitTimeout)
		defer t.Stop()
		timeout = t.C
	}
	l.waiters++
	for {
		space := l.space
		l.mu.Unlock()
		var reason DropReason
		select {
		case <-space:
		case <-timeout:
			reason = DropWaitTimeout
		case <-ctx.Done():
			reason = DropCanceled
		}
		l.mu.Lock()
		switch {
		case l.closed:
			l.waiters--
			return l.dropLocked(DropClosed)
		case l.pendingLocked() < l.cfg.QueueSize:
			l.waiters--
			l.pushLocked(e)
			return nil
		case reason != "":
			l.waiters--
			return l.dropLocked(reason)
		}
	}
}

// dropLocked counts one dropped entry, unlocks l.mu and returns the error
// of Log.
func (l *Logger) dropLocked(reason DropReason) error {
	i := l.countDropLocked(reason, 1)
	l.mu.Unlock()
	return l.dropErrs[i]
}

// countDropLocked counts n dropped entries and returns the reason's index.
func (l *Logger) countDropLocked(reason DropReason, n int) int {
	i := slices.Index(dropReasons[:], reason)
	l.dropped[i] += uint64(n)
	if l.m != nil && n > 0 {
		l.m.byReason[i].Add(float64(n))
	}
	return i
}

// pushLocked queues e, wakes the writer when a batch opens or fills, and
// unlocks l.mu.
func (l *Logger) pushLocked(e Entry) {
	l.queue = append(l.queue, e)
	n := len(l.queue)
	if n == 1 {
		l.firstAt = time.Now()
	}
	l.setQueueGaugeLocked()
	l.mu.Unlock()
	if n == 1 || n%l.cfg.BatchSize == 0 {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (l *Logger) pendingLocked() int { return len(l.queue) + l.inflight }

func (l *Logger) setQueueGaugeLocked() {
	if l.m != nil {
		l.m.queue.Set(float64(l.pendingLocked()))
	}
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{
		Produced:    l.produced,
		Written:     l.written,
		Pending:     l.pendingLocked(),
		Waiting:     l.waiters,
		WriteErrors: l.writeErrors,
		DroppedBy:   make(map[DropReason]uint64, len(dropReasons)),
	}
	for i, r := range dropReasons {
		s.DroppedBy[r] = l.dropped[i]
	}
	return s
}

// ChainHead returns the sequence number and hash of the last entry chained
// by this Logger (or, before its first write, the head loaded from a
// ChainSink).
func (l *Logger) ChainHead() (seq int64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.chain.seq, l.chain.head
}

// Run writes queued entries until ctx ends or Close is called, and prunes
// old entries when Retention is set. Entries still buffered when ctx ends
// stay buffered for Close. Run returns nil when stopped, ErrRunning when
// another Run is active and ErrClosed after Close.
func (l *Logger) Run(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.running {
		l.mu.Unlock()
		return ErrRunning
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	l.running, l.runDone, l.abandon = true, done, cancel
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.running, l.abandon = false, nil
		l.mu.Unlock()
		close(done)
	}()

	var pruner sync.WaitGroup
	if p, ok := l.cfg.Sink.(Pruner); ok && l.cfg.Retention > 0 {
		pruner.Go(func() { l.pruneLoop(wctx, p) })
	}
	var writers sync.WaitGroup
	for range l.cfg.Writers {
		writers.Go(func() { l.writeLoop(wctx) })
	}
	writers.Wait()
	cancel()
	pruner.Wait()
	return nil
}

func (l *Logger) pruneLoop(ctx context.Context, p Pruner) {
	t := time.NewTicker(l.cfg.PruneInterval)
	defer t.Stop()
	for {
		n, err := p.Prune(ctx, l.cfg.Retention)
		if err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "audit prune failed", "err", err)
		} else if n > 0 {
			l.log.InfoContext(ctx, "audit entries pruned", "count", n, "older_than", l.cfg.Retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops accepting entries (Log drops them with reason "closed"),
// writes everything still buffered and returns when the buffer is empty.
// When ctx ends first, the remaining entries are dropped with reason
// "shutdown" (a batch cut off mid-write counts as dropped even if the
// database committed it) and Close returns an error wrapping ctx.Err().
// Close stops Run. Later calls wait for the first to finish (or for their
// own ctx) and return nil.
func (l *Logger) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		select {
		case <-l.closeDone:
		case <-ctx.Done():
		}
		return nil
	}
	defer close(l.closeDone)
	l.closed = true
	close(l.closing)
	if l.waiters > 0 {
		close(l.space)
		l.space = make(chan struct{})
	}
	done := l.runDone
	running := l.running
	l.mu.Unlock()

	if running {
		select {
		case <-done:
		case <-ctx.Done():
			l.mu.Lock()
			if l.abandon != nil {
				l.abandon()
			}
			l.mu.Unlock()
			<-done
		}
	}
	// Run has returned (or never ran): write what is left here.
	l.mu.Lock()
	l.running = true
	l.mu.Unlock()
	if ctx.Err() == nil {
		l.writeLoop(ctx)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.queue); n > 0 {
		l.countDropLocked(DropShutdown, n)
		l.log.ErrorContext(ctx, "audit entries dropped at shutdown", "count", n)
		l.queue = nil
		l.setQueueGaugeLocked()
		return fmt.Errorf("audit: close: %d entries not written: %w", n, ctx.Err())
	}
	return nil
}

// writeLoop writes batches until ctx ends or, once closing, the queue is
// empty. The unsettled entries of a batch whose write is abandoned go back
// to the front of the queue.
func (l *Logger) writeLoop(ctx context.Context) {
	for {
		batch := l.next(ctx)
		if batch == nil {
			return
		}
		if rest := l.write(ctx, batch); rest != nil {
			l.mu.Lock()
			l.queue = append(rest[:len(rest):len(rest)], l.queue...)
			l.inflight -= len(rest)
			l.firstAt = time.Now()
			l.mu.Unlock()
			return
		}
	}
}

// next waits for a batch: BatchSize entries, or fewer once the oldest has
// waited BatchTimeout or the logger is closing. It returns nil when ctx
// ends or when closing with an empty queue.
func (l *Logger) next(ctx context.Context) []Entry {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		l.mu.Lock()
		n := len(l.queue)
		closing := l.closed
		if n >= l.cfg.BatchSize || (n > 0 && (closing || time.Since(l.firstAt) >= l.cfg.BatchTimeout)) {
			k := min(n, l.cfg.BatchSize)
			batch := l.queue[:k:k]
			l.queue = l.queue[k:]
			if len(l.queue) == 0 {
				l.queue = nil
			} else {
				l.firstAt = time.Now()
			}
			l.inflight += k
			l.mu.Unlock()
			return batch
		}
		if n == 0 && closing {
			l.mu.Unlock()
			return nil
		}
		var fire <-chan time.Time
		if n > 0 {
			d := l.cfg.BatchTimeout - time.Since(l.firstAt)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			fire = timer.C
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
		case <-l.closing:
		case <-fire:
		}
	}
}

// write stores batch, retrying with backoff. It returns nil when the batch
// is settled (written, or dropped as rejected), and the unsettled entries
// when ctx ended first.
func (l *Logger) write(ctx context.Context, batch []Entry) []Entry {
	backoff := l.cfg.RetryMin
	failures := 0
	for {
		err := l.ensureChain(ctx)
		headFailed := err != nil
		if err == nil {
			l.linkAll(batch)
			err = l.attempt(ctx, batch)
		}
		if err == nil {
			if failures > 0 {
				l.log.InfoContext(ctx, "audit writes recovered", "failed_attempts", failures)
			}
			l.settle(len(batch), 0)
			return nil
		}
		if ctx.Err() != nil {
			return batch
		}
		failures++
		l.countError(err)
		if !headFailed && rejected(err) {
			l.log.WarnContext(ctx, "audit batch rejected; writing entries one by one", "entries", len(batch), "err", err)
			return l.writeSingles(ctx, batch)
		}
		if failures == 1 || failures%20 == 0 {
			l.log.WarnContext(ctx, "audit batch write failed; retrying", "entries", len(batch), "attempt", failures, "err", err)
		}
		if !sleep(ctx, jitter(backoff)) {
			return batch
		}
		backoff = min(backoff*2, l.cfg.RetryMax)
	}
}

// writeSingles writes the entries of a rejected batch one at a time,
// dropping those the sink refuses for good. When chaining, the entries are
// relinked so that the chain skips a dropped one.
func (l *Logger) writeSingles(ctx context.Context, batch []Entry) []Entry {
	if l.cfg.Chain {
		l.mu.Lock()
		l.chain.seq, l.chain.head = batch[0].Seq-1, batch[0].PrevHash
		l.mu.Unlock()
		for i := range batch {
			batch[i].Hash = ""
		}
	}
	for i := range batch {
		one := batch[i : i+1]
		backoff := l.cfg.RetryMin
		for {
			l.linkAll(one)
			err := l.attempt(ctx, one)
			if err == nil {
				l.settle(1, 0)
				break
			}
			if ctx.Err() != nil {
				return batch[i:]
			}
			l.countError(err)
			if rejected(err) {
				l.log.ErrorContext(ctx, "audit entry rejected by the sink; dropped", "id", one[0].ID.String(), "err", err)
				if l.cfg.Chain {
					l.mu.Lock()
					l.chain.seq, l.chain.head = one[0].Seq-1, one[0].PrevHash
					l.mu.Unlock()
				}
				l.settle(0, 1)
				break
			}
			if !sleep(ctx, jitter(backoff)) {
				return batch[i:]
			}
			backoff = min(backoff*2, l.cfg.RetryMax)
		}
	}
	return nil
}

// attempt makes one write of batch within WriteTimeout.
func (l *Logger) attempt(ctx context.Context, batch []Entry) error {
	wctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	start := time.Now()
	err := l.cfg.Sink.Write(wctx, batch)
	if l.m != nil && err == nil {
		l.m.writeTime.Observe(time.Since(start).Seconds())
		l.m.batch.Observe(float64(len(batch)))
	}
	return err
}

// settle removes a finished batch from the buffer: written entries are
// counted as written, dropped ones as rejected.
func (l *Logger) settle(written, dropped int) {
	l.mu.Lock()
	l.inflight -= written + dropped
	l.written += uint64(written)
	l.countDropLocked(DropRejected, dropped)
	if l.waiters > 0 {
		close(l.space)
		l.space = make(chan struct{})
	}
	l.setQueueGaugeLocked()
	l.mu.Unlock()
	if l.m != nil && written > 0 {
		l.m.written.Add(float64(written))
	}
}

func (l *Logger) countError(err error) {
	l.mu.Lock()
	l.writeErrors++
	l.mu.Unlock()
	if l.m == nil {
		return
	}
	typ := "write"
	switch {
	case rejected(err):
		typ = "rejected"
	case errors.Is(err, context.DeadlineExceeded):
		typ = "timeout"
	}
	l.m.errs.WithLabelValues(typ).Inc()
}

// ensureChain loads the chain head from the sink once, when chaining.
func (l *Logger) ensureChain(ctx context.Context) error {
	if !l.cfg.Chain || l.chainLoaded {
		return nil
	}
	if cs, ok := l.cfg.Sink.(ChainSink); ok {
		hctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
		seq, head, err := cs.ChainHead(hctx)
		cancel()
		if err != nil {
			return fmt.Errorf("audit: load chain head: %w", err)
		}
		l.mu.Lock()
		l.chain.seq, l.chain.head = seq, head
		l.mu.Unlock()
	}
	l.chainLoaded = true
	return nil
}

// linkAll chains the entries of batch that are not chained yet.
func (l *Logger) linkAll(batch []Entry) {
	if !l.cfg.Chain {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range batch {
		if batch[i].Hash == "" {
			l.chain.link(&batch[i])
		}
	}
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
