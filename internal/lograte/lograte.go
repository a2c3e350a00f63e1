// Package lograte limits log records that a fault can repeat without bound
// (a dependency down, every request or message failing the same way): at
// most one record per kind per interval reaches the logger, and the next
// record of that kind carries the count of those left out ("suppressed").
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the interval of [New] when none is given.
const DefaultInterval = 10 * time.Second

// Logger logs through an *slog.Logger at most one record per kind per
// interval. The kind of [Logger.Log] and its shortcuts is the message, so
// messages must be constants (details go into the attributes); the number
// of kinds is then bounded by the call sites. The zero value and nil
// discard.
type Logger struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	kinds map[string]*kind
}

// maxKinds bounds the kinds a Logger tells apart; the records of kinds
// beyond it share one.
const maxKinds = 256

const otherKinds = "\x00other"

type kind struct {
	last       time.Time
	suppressed int64
}

// New returns a Logger over log (nil discards) that lets one record per
// kind through per interval (DefaultInterval when interval <= 0), timed by
// now (nil: time.Now).
func New(log *slog.Logger, interval time.Duration, now func() time.Time) *Logger {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if now == nil {
		now = time.Now
	}
	return &Logger{log: log, interval: interval, now: now, kinds: make(map[string]*kind)}
}

// Log logs msg at level with args unless a record of the same message was
// logged less than an interval ago. A record that follows left-out ones
// carries "suppressed" with their number.
func (l *Logger) Log(ctx context.Context, level slog.Level, msg string, args ...any) {
	l.LogKind(ctx, msg, level, msg, args...)
}

// LogKind is [Logger.Log] for records whose message varies: kind groups
// them (it must come from a bounded set).
func (l *Logger) LogKind(ctx context.Context, kind string, level slog.Level, msg string, args ...any) {
	if l == nil || l.log == nil || !l.log.Enabled(ctx, level) {
		return
	}
	n, ok := l.allow(kind)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args[:len(args):len(args)], slog.Int64("suppressed", n))
	}
	l.log.Log(ctx, level, msg, args...)
}

// allow reports whether a record of kind may be logged now and how many
// were left out since the last one.
func (l *Logger) allow(name string) (suppressed int64, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kinds[name]
	if k == nil && len(l.kinds) >= maxKinds {
		name = otherKinds
		k = l.kinds[name]
	}
	if k == nil {
		l.kinds[name] = &kind{last: now}
		return 0, true
	}
	if now.Sub(k.last) < l.interval {
		k.suppressed++
		return 0, false
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	return n, true
}

// Error logs at error level (see [Logger.Log]).
func (l *Logger) Error(msg string, args ...any) {
	l.Log(context.Background(), slog.LevelError, msg, args...)
}

// Warn logs at warn level (see [Logger.Log]).
func (l *Logger) Warn(msg string, args ...any) {
	l.Log(context.Background(), slog.LevelWarn, msg, args...)
}

// Info logs at info level (see [Logger.Log]).
func (l *Logger) Info(msg string, args ...any) {
	l.Log(context.Background(), slog.LevelInfo, msg, args...)
}
