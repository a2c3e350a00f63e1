package audit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// writeLoop writes batches until ctx ends or, once closing, the buffer is
// empty. A batch whose write is abandoned stays in l.batch for the next
// writer (Close's after Run's).
func (l *Logger) writeLoop(ctx context.Context) {
	for {
		batch := l.next(ctx)
		if batch == nil {
			return
		}
		if rest := l.write(ctx, batch); rest != nil {
			l.batch = rest
			return
		}
		l.batch = nil
	}
}

// next waits for a batch: BatchSize entries or more (up to MaxBatchSize),
// or fewer once the oldest has waited BatchTimeout or the logger is
// closing. It returns nil when ctx ends or when closing with an empty
// buffer.
func (l *Logger) next(ctx context.Context) []Entry {
	if l.batch != nil {
		return l.batch
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	due := false
	for {
		l.mu.Lock()
		n, closing := l.held, l.closed
		l.mu.Unlock()
		if n >= l.cfg.BatchSize || (n > 0 && (closing || due)) {
			batch, err := l.buf.Peek(l.cfg.MaxBatchSize)
			if err == nil && len(batch) > 0 {
				return batch
			}
			if err == nil {
				// The buffer holds fewer entries than were appended and
				// not acknowledged: it lost some. Count them.
				l.mu.Lock()
				lost := l.held - l.buf.Len()
				if lost > 0 {
					l.countDropLocked(DropBufferError, lost)
					l.held -= lost
					l.setQueueGaugeLocked()
				}
				l.mu.Unlock()
				err = fmt.Errorf("audit: buffer returned no entries while holding %d; %d counted as lost", n, max(lost, 0))
			}
			l.log.ErrorContext(ctx, "audit buffer read failed; retrying", "err", err)
			if !sleep(ctx, l.cfg.RetryMax) {
				return nil
			}
			continue
		}
		if n == 0 && closing {
			return nil
		}
		var fire <-chan time.Time
		if n > 0 {
			// The batch opened at the latest now: the first entry woke us.
			if timer == nil {
				timer = time.NewTimer(l.cfg.BatchTimeout)
			}
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
		case <-l.closing:
		case <-fire:
			due = true
		}
	}
}

// write stores batch, retrying with backoff, and acknowledges it. It
// returns nil when the batch is settled (written, or dropped as rejected),
// and its unsettled entries when ctx ended first.
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
			l.settle(ctx, len(batch), 0)
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
// dropping those the sink refuses for good. When entries are chained as
// they are written, they are relinked so that the chain skips a dropped
// one; entries chained before the buffer cannot be relinked, and a dropped
// one leaves a gap that Verify reports.
func (l *Logger) writeSingles(ctx context.Context, batch []Entry) []Entry {
	relink := l.cfg.Chain && !l.chainAtAppend
	if relink {
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
				l.settle(ctx, 1, 0)
				break
			}
			if ctx.Err() != nil {
				return batch[i:]
			}
			l.countError(err)
			if rejected(err) {
				l.log.ErrorContext(ctx, "audit entry rejected by the sink; dropped", "id", one[0].ID.String(), "seq", one[0].Seq, "err", err)
				if relink {
					l.mu.Lock()
					l.chain.seq, l.chain.head = one[0].Seq-1, one[0].PrevHash
					l.mu.Unlock()
				}
				l.settle(ctx, 0, 1)
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

// settle acknowledges a finished part of a batch: written entries are
// counted as written, dropped ones as rejected.
func (l *Logger) settle(ctx context.Context, written, dropped int) {
	if err := l.buf.Ack(written + dropped); err != nil {
		// The entries may come back after a restart; the sink ignores ids
		// it holds.
		l.log.ErrorContext(ctx, "audit buffer acknowledgement failed", "err", err)
	}
	l.mu.Lock()
	l.held -= written + dropped
	l.written += uint64(written)
	l.countDropLocked(DropRejected, dropped)
	l.overrun = false
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

// ensureChain loads the chain head from the sink once, when chaining as
// entries are written.
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
