package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Drop the entry at once (reason "queue_full"). The default: a full
	// buffer never slows the caller.
	Drop Policy = iota
	// Wait up to Config.WaitTimeout for room, then drop (reason
	// "wait_timeout"). Once a wait has timed out, later entries are dropped
	// at once until the writer frees room, so that an outage costs one
	// WaitTimeout, not one per entry.
	Wait
	// Block until there is room or the caller's context ends (reason
	// "canceled").
	Block
)

// DropReason says why entries were dropped.
type DropReason string

// The drop reasons.
const (
	DropQueueFull   DropReason = "queue_full"   // the buffer is full (Drop policy, or Wait after a timed-out wait)
	DropWaitTimeout DropReason = "wait_timeout" // Wait policy, no room within WaitTimeout
	DropCanceled    DropReason = "canceled"     // the caller's context ended while waiting
	DropClosed      DropReason = "closed"       // Log after Close
	DropShutdown    DropReason = "shutdown"     // still in a memory buffer when Close ran out of time
	DropRejected    DropReason = "rejected"     // the sink refuses the entry for good
	DropBufferError DropReason = "buffer_error" // the buffer failed to take or keep the entry (a journal's I/O error)
)

var dropReasons = [...]DropReason{DropQueueFull, DropWaitTimeout, DropCanceled, DropClosed, DropShutdown, DropRejected, DropBufferError}

// Errors of Log, Run and Close.
var (
	// ErrDropped is returned by Log when the entry was dropped; the error
	// names the reason.
	ErrDropped = errkind.New(errkind.Unavailable, "audit: entry dropped")
	// ErrNotDurable is returned by Log in write-ahead mode when the buffer
	// could not make the entry durable (it is still held and may yet be
	// stored, so it is not counted as dropped); the action must not be
	// acknowledged.
	ErrNotDurable = errkind.New(errkind.Unavailable, "audit: entry not durable")
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("audit: logger closed")
	// ErrRunning is returned by Run when the logger is already running.
	ErrRunning = errors.New("audit: logger already running")
)

// Config configures a Logger. The zero value of every field except Sink
// means the documented default.
type Config struct {
	// Sink stores the entries. Required.
	Sink Sink
	// Buffer holds the entries until the sink stored them. Default: a
	// MemoryBuffer of QueueSize entries. A journal (package audit/journal)
	// keeps them across restarts and crashes.
	Buffer Buffer
	// QueueSize bounds the default memory buffer: the entries held, queued
	// or being written. Default 10000.
	QueueSize int
	// BatchSize is how many waiting entries start a write at once; fewer
	// are written once the oldest has waited BatchTimeout. Default 1000:
	// a write has a fixed cost (a transaction, the pages of every index),
	// which small batches pay per few entries.
	BatchSize int
	// MaxBatchSize bounds the entries of one write: when the writer falls
	// behind, batches grow up to it, so that throughput grows with the
	// load. Default 5000 (at least BatchSize).
	MaxBatchSize int
	// BatchTimeout is the longest an entry waits for its batch to fill.
	// Default 1 s.
	BatchTimeout time.Duration
	// Policy is what Log does when the buffer is full. Default Drop.
	Policy Policy
	// WaitTimeout is how long Log waits for room under the Wait policy.
	// Default 1 s.
	WaitTimeout time.Duration
	// WriteAhead makes Log return only once its entry is held by the Buffer
	// and durable as the Buffer makes it (a journal: written, and fsynced
	// when so configured). Log's error then means that the action is not
	// audited and must not be acknowledged: the router and HTTP middlewares
	// answer service_unavailable (503) instead of the reply.
	WriteAhead bool
	// RetryMin and RetryMax bound the backoff between attempts to write a
	// failed batch (doubling, with jitter). Defaults 50 ms and 2 s.
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds one write attempt. Default 5 s.
	WriteTimeout time.Duration
	// Redactor redacts entries in Log. Default NewRedactor().
	Redactor *Redactor
	// Chain links the entries into a hash chain (Entry.Seq, PrevHash,
	// Hash). It continues from the head of a ChainBuffer, else from the
	// head stored by a ChainSink. With a ChainBuffer entries are linked as
	// they are appended; otherwise as they are written.
	Chain bool
	// ChainKey, when set, makes the chain an HMAC-SHA-256 chain.
	ChainKey []byte
	// Logger receives write failures, recoveries and the summary of Close;
	// nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil means none.
	Registerer prometheus.Registerer
}

// Stats are the Logger's counters, read together. At any time
// Produced = Written + Dropped() + Pending + Waiting. Once Close has
// returned, Waiting is 0, and so is Pending unless the buffer keeps
// entries for the next process (a journal).
type Stats struct {
	// Produced counts the entries given to Log.
	Produced uint64
	// Written counts the entries the sink stored.
	Written uint64
	// DroppedBy counts the dropped entries by reason.
	DroppedBy map[DropReason]uint64
	// Pending is the number of entries buffered (queued or being written),
	// including, with a journal, those a previous process left.
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
	buf      Buffer
	log      *slog.Logger
	redactor *Redactor
	m        *metrics
	// chainAtAppend: entries are linked in Log, before the buffer.
	chainAtAppend bool

	mu        sync.Mutex
	held      int  // entries in the buffer, as appended and acknowledged
	overrun   bool // a Wait timed out; cleared when room frees
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

	// Owned by the writer (Run's, then Close's): the batch being written,
	// kept across an abandoned attempt so that its links stay as made.
	batch []Entry
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
		cfg.BatchSize = 1000
	}
	if cfg.MaxBatchSize <= 0 {
		cfg.MaxBatchSize = 5000
	}
	cfg.MaxBatchSize = max(cfg.MaxBatchSize, cfg.BatchSize)
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
	if cfg.Buffer == nil {
		cfg.Buffer = NewMemoryBuffer(cfg.QueueSize)
	}
	l := &Logger{
		cfg:       cfg,
		buf:       cfg.Buffer,
		log:       cfg.Logger,
		redactor:  cfg.Redactor,
		m:         newMetrics(cfg.Registerer),
		space:     make(chan struct{}),
		wake:      make(chan struct{}, 1),
		closing:   make(chan struct{}),
		closeDone: make(chan struct{}),
		held:      cfg.Buffer.Len(),
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
	if cb, ok := cfg.Buffer.(ChainBuffer); ok && cfg.Chain {
		l.chainAtAppend, l.chainLoaded = true, true
		l.chain.seq, l.chain.head = cb.ChainHead()
	}
	l.setQueueGaugeLocked()
	return l
}

// Log redacts e, fills its defaults (ID, Timestamp, Outcome) and hands it
// to the buffer. It never calls the sink; when the buffer is full it
// follows the Policy (ctx bounds the waiting of Wait and Block). It returns
// an error wrapping ErrDropped when the entry was dropped. With WriteAhead
// it returns once the entry is durable, or an error wrapping ErrNotDurable
// when it cannot be made so (ctx ended, the buffer failed).
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
	pos, err := l.appendLocked(&e)
	if err == nil {
		return l.appended(ctx, pos)
	}
	if !errors.Is(err, ErrFull) {
		return l.bufferFailedLocked(ctx, err)
	}
	var timeout <-chan time.Time
	switch {
	case l.cfg.Policy == Drop, l.cfg.Policy == Wait && l.overrun:
		return l.dropLocked(DropQueueFull)
	case l.cfg.Policy == Wait:
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
		if l.closed {
			l.waiters--
			return l.dropLocked(DropClosed)
		}
		pos, err := l.appendLocked(&e)
		switch {
		case err == nil:
			l.waiters--
			return l.appended(ctx, pos)
		case !errors.Is(err, ErrFull):
			l.waiters--
			return l.bufferFailedLocked(ctx, err)
		case reason != "":
			l.waiters--
			if reason == DropWaitTimeout {
				l.overrun = true
			}
			return l.dropLocked(reason)
		}
	}
}

// appendLocked links e when the chain is made at append and appends it.
// On failure the chain is left as it was.
func (l *Logger) appendLocked(e *Entry) (uint64, error) {
	if !l.chainAtAppend {
		return l.buf.Append(*e)
	}
	seq, head := l.chain.seq, l.chain.head
	l.chain.link(e)
	pos, err := l.buf.Append(*e)
	if err != nil {
		l.chain.seq, l.chain.head = seq, head
		e.Seq, e.PrevHash, e.Hash = 0, "", ""
	}
	return pos, err
}

// appended counts an appended entry, unlocks l.mu, wakes the writer when a
// batch opens or fills, and waits for durability in write-ahead mode.
func (l *Logger) appended(ctx context.Context, pos uint64) error {
	l.held++
	n := l.held
	l.setQueueGaugeLocked()
	l.mu.Unlock()
	if n == 1 || n == l.cfg.BatchSize {
		l.kick()
	}
	if !l.cfg.WriteAhead {
		return nil
	}
	if err := l.buf.Sync(ctx, pos); err != nil {
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	return nil
}

// bufferFailedLocked drops an entry the buffer failed to take.
func (l *Logger) bufferFailedLocked(ctx context.Context, err error) error {
	derr := l.dropLocked(DropBufferError)
	l.log.ErrorContext(ctx, "audit buffer failed; entry dropped", "err", err)
	return derr
}

func (l *Logger) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
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

func (l *Logger) setQueueGaugeLocked() {
	if l.m != nil {
		l.m.queue.Set(float64(l.held))
	}
}

// WriteAhead reports whether Log returns only once its entry is durable
// (Config.WriteAhead): then a Log error means the action must not be
// acknowledged.
func (l *Logger) WriteAhead() bool { return l.cfg.WriteAhead }

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statsLocked()
}

// ChainHead returns the sequence number and hash of the last entry chained
// by this Logger (or, before its first, the head it continues from, once
// known).
func (l *Logger) ChainHead() (seq int64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.chain.seq, l.chain.head
}

// Run writes buffered entries until ctx ends or Close is called. Entries
// still buffered when ctx ends stay buffered for Close. Run returns nil
// when stopped, ErrRunning when another Run is active and ErrClosed after
// Close.
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
	l.writeLoop(wctx)
	return nil
}

// Close stops accepting entries (Log drops them with reason "closed"),
// writes everything still buffered and returns when the buffer is empty,
// then closes the buffer. When ctx ends first, what is left stays in a
// durable buffer (a journal) for the next process; a memory buffer's
// entries are dropped with reason "shutdown" (a batch cut off mid-write
// counts as dropped even if the sink stored it). Close then returns an
// error wrapping ctx.Err(). Close logs one line with the counters and
// what was lost, by reason. Close stops Run. Later calls wait for the
// first to finish (or for their own ctx) and return nil.
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
	berr := l.buf.Close()
	_, inMemory := l.buf.(*MemoryBuffer)
	l.mu.Lock()
	left := l.held
	if inMemory && left > 0 {
		l.countDropLocked(DropShutdown, left)
		l.held = 0
		l.setQueueGaugeLocked()
	}
	st := l.statsLocked()
	l.mu.Unlock()

	attrs := []any{"produced", st.Produced, "written", st.Written, "dropped", st.Dropped()}
	for _, r := range dropReasons {
		if n := st.DroppedBy[r]; n > 0 {
			attrs = append(attrs, "dropped_"+string(r), n)
		}
	}
	var err error
	switch {
	case left > 0 && inMemory:
		err = fmt.Errorf("audit: close: %d entries not written: %w", left, ctx.Err())
	case left > 0:
		attrs = append(attrs, "kept_in_buffer", left)
		err = fmt.Errorf("audit: close: %d entries left in the buffer for the next start: %w", left, ctx.Err())
	}
	if berr != nil {
		err = errors.Join(err, fmt.Errorf("audit: close buffer: %w", berr))
		attrs = append(attrs, "buffer_err", berr)
	}
	level := slog.LevelInfo
	if st.Dropped() > 0 || berr != nil {
		level = slog.LevelError
	}
	l.log.Log(ctx, level, "audit log closed", attrs...)
	return err
}

func (l *Logger) statsLocked() Stats {
	s := Stats{Produced: l.produced, Written: l.written, Pending: l.held, Waiting: l.waiters,
		WriteErrors: l.writeErrors, DroppedBy: make(map[DropReason]uint64, len(dropReasons))}
	for i, r := range dropReasons {
		s.DroppedBy[r] = l.dropped[i]
	}
	return s
}
