package redislimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// slidingWindow decides one request. KEYS[1] is the key's sorted set of
// admitted requests (score: admission time in µs by the Redis clock);
// ARGV: window (µs), quota, a member unique to this request. A request is
// admitted when fewer than quota members are younger than the window.
// Returns {allowed, remaining, reset after (µs), retry after (µs)}.
var slidingWindow = redis.NewScript(`
local window = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < quota then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return {1, quota - n - 1, window, 0}
end
local next = redis.call('ZRANGE', KEYS[1], n - quota, n - quota, 'WITHSCORES')
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
return {0, 0, tonumber(newest[2]) + window - now, tonumber(next[2]) + window - now}
`)

// Config configures [New]. The zero value means the documented defaults.
type Config struct {
	// Prefix is prepended to every key (default "ratelimit:").
	Prefix string
	// FailMode says what happens when Redis cannot answer (default
	// ratelimit.FailClosed).
	FailMode ratelimit.FailMode
	// Timeout bounds each decision (default DefaultTimeout, 100 ms). It is
	// applied as a context deadline, which go-redis honours only with
	// ContextTimeoutEnabled (see NewClient).
	Timeout time.Duration
	// RetryAfter is the retry hint of errors when failing closed (default
	// ratelimit.DefaultRetryAfter).
	RetryAfter time.Duration
	// LocalCache remembers, in process, the keys that were refused until
	// their RetryAfter passes and refuses them without asking Redis, so that
	// abusive traffic does not load Redis. A cached refusal may last up to
	// one round trip longer than Redis would have refused.
	LocalCache bool
	// LocalCacheSize bounds the local cache (default 10000 keys); when it is
	// full of unexpired refusals, new refusals are not cached.
	LocalCacheSize int
	// Logger receives backend failures (warn, at most one per second); nil
	// discards.
	Logger *slog.Logger
	// Registerer receives rate_limit_decisions_total{limiter="redis"},
	// rate_limit_backend_errors_total{mode} and
	// rate_limit_redis_duration_seconds{op}; nil means no metrics.
	Registerer prometheus.Registerer
}

// Limiter is the Redis sliding-window ratelimit.Limiter. It is safe for
// concurrent use and starts no goroutine.
type Limiter struct {
	client   redis.Scripter
	cfg      Config
	instance string
	seq      atomic.Uint64
	backend  *backend
	count    ratelimit.DecisionCounters
	cache    *denyCache
}

// New returns a Limiter that keeps its windows in Redis through client (a
// *redis.Client, *redis.ClusterClient, redis.UniversalClient or anything
// that runs scripts).
func New(client redis.Scripter, cfg Config) *Limiter {
	if cfg.Prefix == "" {
		cfg.Prefix = "ratelimit:"
	}
	if cfg.LocalCacheSize <= 0 {
		cfg.LocalCacheSize = 10000
	}
	metrics := ratelimit.NewMetrics(cfg.Registerer)
	l := &Limiter{
		client:   client,
		cfg:      cfg,
		instance: instanceID(),
		backend:  newBackend(cfg.FailMode, cfg.Timeout, cfg.RetryAfter, cfg.Logger, cfg.Registerer, metrics),
		count:    metrics.Decisions("redis"),
	}
	if cfg.LocalCache {
		l.cache = &denyCache{max: cfg.LocalCacheSize, m: make(map[string]denial)}
	}
	return l
}

// Allow admits the request when fewer than rate.Quota() requests of key
// were admitted in the last rate.Window, by the Redis clock.
func (l *Limiter) Allow(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
	if err := rate.Validate(); err != nil {
		return ratelimit.Result{}, err
	}
	quota := rate.Quota()
	if l.cache != nil {
		if res, ok := l.cache.get(key, quota, time.Now()); ok {
			l.count.Count(false, nil)
			return res, nil
		}
	}
	member := l.instance + strconv.FormatUint(l.seq.Add(1), 36)
	var vals []int64
	err := l.backend.do(ctx, "allow", func(ctx context.Context) error {
		var err error
		vals, err = slidingWindow.Run(ctx, l.client, []string{l.cfg.Prefix + key},
			rate.Window.Microseconds(), quota, member).Int64Slice()
		if err == nil && len(vals) != 4 {
			err = fmt.Errorf("unexpected script reply %v", vals)
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return ratelimit.Result{}, err
		}
		if l.backend.mode == ratelimit.FailOpen {
			l.count.Count(true, nil)
			return ratelimit.FailOpenResult(rate), nil
		}
		l.count.Count(false, err)
		return ratelimit.Result{}, err
	}
	res := ratelimit.Result{
		Allowed:    vals[0] == 1,
		Limit:      quota,
		Remaining:  int(vals[1]),
		ResetAfter: time.Duration(vals[2]) * time.Microsecond,
		RetryAfter: time.Duration(vals[3]) * time.Microsecond,
	}
	if !res.Allowed && l.cache != nil {
		l.cache.put(key, quota, res, time.Now())
	}
	l.count.Count(res.Allowed, nil)
	return res, nil
}

func instanceID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + ":"
}

// denyCache remembers refused keys until their RetryAfter.
type denyCache struct {
	mu  sync.Mutex
	max int
	m   map[string]denial
}

type denial struct {
	quota        int
	retry, reset time.Time
}

func (c *denyCache) get(key string, quota int, now time.Time) (ratelimit.Result, bool) {
	c.mu.Lock()
	d, ok := c.m[key]
	if ok && !now.Before(d.retry) {
		delete(c.m, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok || d.quota != quota {
		return ratelimit.Result{}, false
	}
	return ratelimit.Result{Limit: quota, RetryAfter: d.retry.Sub(now), ResetAfter: d.reset.Sub(now)}, true
}

func (c *denyCache) put(key string, quota int, res ratelimit.Result, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, d := range c.m {
			if !now.Before(d.retry) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			return
		}
	}
	c.m[key] = denial{quota: quota, retry: now.Add(res.RetryAfter), reset: now.Add(res.ResetAfter)}
}

// backend runs Redis calls under the timeout and turns failures into the
// fail mode's error, with metrics and rate-limited logs.
type backend struct {
	mode       ratelimit.FailMode
	timeout    time.Duration
	retryAfter time.Duration
	log        *slog.Logger
	metrics    *ratelimit.Metrics
	latency    *prometheus.HistogramVec

	logMu     sync.Mutex
	logBucket ratelimit.Bucket
}

func newBackend(mode ratelimit.FailMode, timeout, retryAfter time.Duration, log *slog.Logger, reg prometheus.Registerer, metrics *ratelimit.Metrics) *backend {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &backend{
		mode:       mode,
		timeout:    timeout,
		retryAfter: retryAfter,
		log:        log,
		metrics:    metrics,
		logBucket:  ratelimit.NewBucket(ratelimit.Rate{Limit: 1, Window: time.Second}),
	}
	if reg != nil {
		b.latency = registerHistogramVec(reg, prometheus.HistogramOpts{
			Name:    "rate_limit_redis_duration_seconds",
			Help:    "Duration of the limiters' Redis calls, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, "op")
	}
	return b
}

// do runs call with the timeout. A failure is counted and logged, and
// returned as a ratelimit.UnavailableError, unless the caller's own context
// ended, whose error is returned as is.
func (b *backend) do(ctx context.Context, op string, call func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, b.timeout)
	start := time.Now()
	err := call(cctx)
	cancel()
	if b.latency != nil {
		b.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, ratelimit.ErrNotHeld) {
		return err
	}
	b.metrics.BackendError(b.mode)
	b.logMu.Lock()
	logIt, _ := b.logBucket.Take(time.Now())
	b.logMu.Unlock()
	if logIt {
		b.log.LogAttrs(ctx, slog.LevelWarn, "redis limiter backend failed",
			slog.String("op", op), slog.String("fail_mode", b.mode.String()), slog.String("error", err.Error()))
	}
	return ratelimit.Unavailable(fmt.Errorf("redis %s: %w", op, err), b.retryAfter)
}

func registerHistogramVec(reg prometheus.Registerer, opts prometheus.HistogramOpts, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(opts, labels)
	if err := reg.Register(h); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
				return existing
			}
		}
		panic("redislimit: register " + opts.Name + ": " + err.Error())
	}
	return h
}
