package audit

import (
	"context"
	"log/slog"
	"time"
)

// Pruner is implemented by sinks that delete old entries.
type Pruner interface {
	Prune(ctx context.Context, olderThan time.Duration) (int64, error)
}

// Retention deletes entries older than MaxAge from a Pruner, at once and
// then every Interval. It is a job of its own, apart from the Logger: a
// service may prune from one instance only, or from none.
type Retention struct {
	// Pruner deletes the entries. Required.
	Pruner Pruner
	// MaxAge is the age from which entries are deleted. Required.
	MaxAge time.Duration
	// Interval is the time between two runs. Default 1 h.
	Interval time.Duration
	// Logger receives failures and counts; nil discards.
	Logger *slog.Logger
}

// Run prunes until ctx ends and returns nil. A failed run is logged and
// tried again at the next interval. It panics when Pruner is nil or MaxAge
// is not positive.
func (r Retention) Run(ctx context.Context) error {
	if r.Pruner == nil || r.MaxAge <= 0 {
		panic("audit: Retention needs a Pruner and a positive MaxAge")
	}
	if r.Interval <= 0 {
		r.Interval = time.Hour
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		n, err := r.Pruner.Prune(ctx, r.MaxAge)
		switch {
		case err != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "audit prune failed", "err", err)
		case n > 0:
			log.InfoContext(ctx, "audit entries pruned", "count", n, "older_than", r.MaxAge)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
