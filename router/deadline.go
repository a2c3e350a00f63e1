package router

import (
	"context"
	"sync"
	"time"
)

// lazyDeadline is a context with a deadline whose timer is created only
// when somebody waits on it (Done): handlers that never block on their
// context, such as a ping, do not pay for a timer. Until then Err and
// Deadline answer from the clock and the parent.
type lazyDeadline struct {
	context.Context           // the parent
	deadline        time.Time // when the handler's time is up

	mu     sync.Mutex
	inner  context.Context // context.WithDeadline(parent), once Done was called
	cancel context.CancelFunc
}

func withLazyDeadline(parent context.Context, d time.Duration) *lazyDeadline {
	deadline := time.Now().Add(d)
	if pd, ok := parent.Deadline(); ok && pd.Before(deadline) {
		deadline = pd
	}
	return &lazyDeadline{Context: parent, deadline: deadline}
}

// Deadline returns the earlier of the handler's and the parent's deadlines.
func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

// Done starts the deadline's timer on first use.
func (c *lazyDeadline) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		c.inner, c.cancel = context.WithDeadline(c.Context, c.deadline)
	}
	return c.inner.Done()
}

// Err reports cancellation by the parent or an expired deadline.
func (c *lazyDeadline) Err() error {
	c.mu.Lock()
	inner := c.inner
	c.mu.Unlock()
	if inner != nil {
		return inner.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// release stops the timer, if one was started.
func (c *lazyDeadline) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
}
