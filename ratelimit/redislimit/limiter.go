package redislimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pkgroute/pkgroute/internal/promreg"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// slidingWindow decides one request (see ratelimit.Rate). KEYS[1] holds
// the key's admission log: the times of its latest admissions in µs by the
// Redis clock, oldest first. ARGV: window (µs), quota (Limit+Burst), time
// to live (ms, at least the longer span), the form of the log ("1" packed,
// "0" list) and, with a burst only, the longer span (µs) and its quota.
// Tests may add a seventh argument, the time (µs) to use instead of the
// Redis clock, after the longer span and its quota (the window and the
// quota without a burst).
//
// Without burst, a request is admitted when fewer than quota entries are
// younger than the window (the entries at or before now-window have left
// it). On admission the entries that left the window are dropped, now is
// appended and the key gets the window as its time to live: it expires
// exactly when its newest entry leaves the window. The log thus never
// holds more entries than the largest quota used for the key in one
// window. A refusal leaves the log as it was. With a burst the log
// keeps the entries of the longer span, and a request is admitted when
// fewer than its quota are in it and fewer than quota in the window.
//
// Two forms of the log keep a decision cheap. Quotas up to the packed size
// keep a string of 8-byte entries (little-endian doubles, exact for these
// integers): a decision is TIME, one GET and, when it admits, one PSETEX of
// the rewritten log, whose cost grows with the log. Larger quotas keep a
// list of decimal entries, whose ends are O(1) to read, drop and append
// however long it is: TIME, LRANGE of the four oldest (which tells how many
// left the window, bisecting with LINDEX only when all four did), LINDEX of
// the newest and, when it admits, LTRIM of the entries that left (or LLEN
// when none did and the list is longer than four), RPUSH and PEXPIRE.
// A log written under a quota on the other side of the packed size (the
// quota of a key changed) is read in its form, at the cost of one failed
// GET or LRANGE (and, for a list, an LRANGE of its newest quota entries),
// and rewritten in the quota's form at its next admission.
// A refusal changes no log (after the quota of a key shrank, a list's
// refusal appends and takes back its entry). A key holding anything else is
// an error (WRONGTYPE) and is left as it is.
//
// Time never runs backwards in the log: when the Redis clock is behind the
// newest entry (after a failover to a server whose clock is behind, or a
// clock step), now is taken as that entry's time. Decisions are then
// stricter than the window, never looser, until the clock catches up.
//
// Returns the remaining quota (an integer) when admitted without burst,
// {1, remaining, reset after (µs)} when admitted with burst, else {retry
// after (µs), reset after (µs)}.
var slidingWindow = redis.NewScript(`
local key = KEYS[1]
local window = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
local ttl = ARGV[3]
local packed = ARGV[4] == '1'
local span, squota = window, quota
if ARGV[5] then span, squota = tonumber(ARGV[5]), tonumber(ARGV[6]) end
-- t: seconds and microseconds, as TIME gives them (or from the tests' time).
local t
if ARGV[7] then
  t = {string.sub(ARGV[7], 1, -7), string.sub(ARGV[7], -6)}
else
  t = redis.call('TIME')
end
local now = t[1] * 1000000 + t[2]

-- log: the packed log, false when there is no log, nil when it is a list.
-- Small quotas keep packed logs, larger ones lists: GET, or LRANGE of the
-- oldest entries, alone tells, and fails only for a log left by a quota of
-- the other form (until its next admission, which rewrites it in this
-- quota's form).
local log, head
if packed then
  log = redis.pcall('GET', key)
  if type(log) == 'table' then log = nil end
else
  head = redis.pcall('LRANGE', key, '0', '3')
  if head.err then
    log, head = redis.call('GET', key), nil
  elseif #head == 0 then
    log = false
  end
end

if log == nil and packed then
  -- A list left by a larger quota: its newest squota entries, all a
  -- decision of this quota looks at, read as a packed log, which replaces
  -- the list on the next admission.
  local entries = redis.call('LRANGE', key, -squota, -1)
  for i = 1, #entries do entries[i] = struct.pack('<d', tonumber(entries[i])) end
  log = table.concat(entries)
end

-- n, k, result: the log's length, the entries that left, and the reply,
-- when a packed log (or none) admits; it is written at the end.
local n, k, result
if span > window then
  -- A burst: the general rule, on either form.
  local at
  if log ~= nil then
    n = log and #log / 8 or 0
    at = function(i) return struct.unpack('<d', log, 8 * i + 1) end
  else
    n = redis.call('LLEN', key)
    at = function(i) return tonumber(redis.call('LINDEX', key, i)) end
  end
  local newest = 0
  if n > 0 then
    newest = at(n - 1)
    if now < newest then now = newest end
  end
  -- firstAfter: the index of the oldest entry in [lo, n) later than cut.
  local function firstAfter(lo, cut)
    local hi = n
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if at(mid) > cut then hi = mid else lo = mid + 1 end
    end
    return lo
  end
  k = firstAfter(0, now - span)
  local c = n - k
  if c >= squota or (c >= quota and at(n - quota) > now - window) then
    local retry = 0
    if c >= squota then retry = at(n - squota) + span - now end
    if c >= quota then retry = math.max(retry, at(n - quota) + window - now) end
    -- The full quota is back when every entry left the window and at most
    -- squota-quota remain in the span.
    local reset = newest + window - now
    local j = n - (squota - quota) - 1
    if j >= k then reset = math.max(reset, at(j) + span - now) end
    return {retry, reset}
  end
  local remaining = math.min(quota - (n - firstAfter(k, now - window)), squota - c) - 1
  local reset = window
  local j = n - (squota - quota)
  if j >= k and j < n then reset = math.max(reset, at(j) + span - now) end
  if j == n then reset = span end
  result = {1, remaining, reset}
  if log == nil then
    if k > 0 then redis.call('LTRIM', key, k, -1) end
    redis.call('RPUSH', key, now)
    redis.call('PEXPIRE', key, ttl)
    return result
  end
elseif log ~= nil then
  -- A packed log, or none.
  n, k = 0, 0
  if log then
    n = #log / 8
    local newest = struct.unpack('<d', log, #log - 7)
    if now < newest then now = newest end
    local cut = now - window
    -- k: the entries that left the window; usually none or one, else
    -- found by bisection.
    if struct.unpack('<d', log, 1) <= cut then
      k = 1
      if n > 1 and struct.unpack('<d', log, 9) <= cut then
        local lo, hi = 2, n
        while lo < hi do
          local mid = math.floor((lo + hi) / 2)
          if struct.unpack('<d', log, 8 * mid + 1) > cut then hi = mid else lo = mid + 1 end
        end
        k = lo
      end
    end
    if n - k >= quota then
      return {struct.unpack('<d', log, 8 * (n - quota) + 1) + window - now, newest + window - now}
    end
  end
  result = quota - (n - k) - 1
else
  -- A list. Arguments to redis.call are passed as strings, as a Lua number
  -- costs a printf: nowText is now in decimal, made without one.
  local nowText = t[1] .. string.sub('000000', #t[2] + 1) .. t[2]
  head = head or redis.call('LRANGE', key, '0', '3')
  local newestText = redis.call('LINDEX', key, '-1')
  local newest = tonumber(newestText)
  if now < newest then now, nowText = newest, newestText end
  local cut = now - window
  -- k: the entries that left the window, found among the oldest four, else
  -- by bisection.
  k = 0
  while k < #head and tonumber(head[k + 1]) <= cut do k = k + 1 end
  if k == 4 then
    local lo, hi = 4, redis.call('LLEN', key)
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if tonumber(redis.call('LINDEX', key, mid)) > cut then hi = mid else lo = mid + 1 end
    end
    k = lo
  end
  if k > 0 then
    -- Entries left the window, so there is room unless the quota shrank:
    -- append, learn the count from RPUSH, and drop them; after a shrink,
    -- take the entry back and keep the log as it was.
    local c = redis.call('RPUSH', key, nowText) - 1 - k
    if c < quota then
      redis.call('LTRIM', key, ({'1', '2', '3', '4'})[k] or tostring(k), '-1')
      redis.call('PEXPIRE', key, ttl)
      return quota - c - 1
    end
    redis.call('RPOP', key)
    local first = redis.call('LINDEX', key, k + c - quota)
    return {tonumber(first) + window - now, newest + window - now}
  end
  n = #head
  if n == 4 then n = redis.call('LLEN', key) end
  if n < quota then
    redis.call('RPUSH', key, nowText)
    redis.call('PEXPIRE', key, ttl)
    return quota - n - 1
  end
  local first = head[1]
  if n > quota then first = redis.call('LINDEX', key, n - quota) end
  return {tonumber(first) + window - now, newest + window - now}
end

-- A packed log, or none, admitted: written in the quota's form, dropping
-- the k entries that left.
if packed then
  if k > 0 then log = string.sub(log, 8 * k + 1) end
  redis.call('PSETEX', key, ttl, (log or '') .. struct.pack('<d', now))
else
  -- A larger quota: the log becomes a list.
  local entries = {}
  for i = k, n - 1 do entries[#entries + 1] = struct.unpack('<d', log, 8 * i + 1) end
  entries[#entries + 1] = now
  if log then redis.call('DEL', key) end
  redis.call('RPUSH', key, unpack(entries))
  redis.call('PEXPIRE', key, ttl)
end
return result
`)

// defaultPackedMax is the most entries a packed log holds (see
// slidingWindow); longer logs are lists. Up to about this length the packed
// log is the cheaper of the two.
const defaultPackedMax = 64

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
	// Name is the limiter label of rate_limit_decisions_total (default
	// "redis"); give each limiter of an application its own.
	Name string
	// Registerer receives rate_limit_decisions_total{limiter=Name},
	// rate_limit_backend_errors_total{mode} and
	// rate_limit_redis_duration_seconds{op}; nil means no metrics.
	Registerer prometheus.Registerer
}

// Limiter is the Redis sliding-window ratelimit.Limiter. It is safe for
// concurrent use and starts no goroutine.
type Limiter struct {
	client  redis.Scripter
	cfg     Config
	backend *backend
	count   ratelimit.DecisionCounters
	cache   *denyCache
	// packedMax is the most entries a packed log holds.
	packedMax int
	// clock, when set (by tests), replaces the Redis clock in decisions and
	// the local clock of the local cache.
	clock func() time.Time
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
	if cfg.Name == "" {
		cfg.Name = "redis"
	}
	metrics := ratelimit.NewMetrics(cfg.Registerer)
	l := &Limiter{
		client:  client,
		cfg:     cfg,
		backend: newBackend(cfg.FailMode, cfg.Timeout, cfg.RetryAfter, cfg.Logger, cfg.Registerer, metrics),
		count:   metrics.Decisions(cfg.Name),

		packedMax: defaultPackedMax,
	}
	if cfg.LocalCache {
		l.cache = &denyCache{max: cfg.LocalCacheSize, m: make(map[string]denial)}
	}
	return l
}

// Allow admits the request when rate admits it (see ratelimit.Rate) given
// the requests of key admitted before, by the Redis clock.
func (l *Limiter) Allow(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
	if err := rate.Validate(); err != nil {
		return ratelimit.Result{}, err
	}
	quota := rate.Quota()
	if l.cache != nil {
		if res, ok := l.cache.get(key, rate, l.now()); ok {
			l.count.Count(false, nil)
			return res, nil
		}
	}
	// The spans in whole µs, rounded up so that they never shrink; the key
	// lives for the longer one rounded up to whole ms.
	span, squota := rate.Sustained()
	windowUS := int64((rate.Window + time.Microsecond - 1) / time.Microsecond)
	spanUS := windowUS * int64(span/rate.Window)
	// The body of backend.do, inline: no closure to allocate on this path.
	cctx, cancel := context.WithTimeout(ctx, l.backend.timeout)
	start := l.backend.now()
	form := "0"
	if squota <= l.packedMax {
		form = "1"
	}
	args := []any{windowUS, quota, (spanUS + 999) / 1000, form}
	if spanUS > windowUS || l.clock != nil {
		args = append(args, spanUS, squota)
	}
	if l.clock != nil {
		args = append(args, l.clock().UnixMicro())
	}
	reply, err := slidingWindow.Run(cctx, l.client, []string{l.cfg.Prefix + key}, args...).Result()
	cancel()
	var res ratelimit.Result
	if err == nil {
		res, err = windowResult(reply, quota, windowUS)
	}
	err = l.backend.finish(ctx, "allow", start, err)
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
	if !res.Allowed && l.cache != nil {
		l.cache.put(key, rate, res, l.now())
	}
	l.count.Count(res.Allowed, nil)
	return res, nil
}

// now returns the time of the local cache.
func (l *Limiter) now() time.Time {
	if l.clock != nil {
		return l.clock()
	}
	return time.Now()
}

// windowResult turns the reply of slidingWindow into a Result.
func windowResult(reply any, quota int, windowUS int64) (ratelimit.Result, error) {
	switch v := reply.(type) {
	case int64:
		return ratelimit.Result{
			Allowed:    true,
			Limit:      quota,
			Remaining:  int(v),
			ResetAfter: time.Duration(windowUS) * time.Microsecond,
		}, nil
	case []any:
		if len(v) == 3 {
			remaining, ok1 := v[1].(int64)
			reset, ok2 := v[2].(int64)
			if ok1 && ok2 {
				return ratelimit.Result{
					Allowed:    true,
					Limit:      quota,
					Remaining:  int(remaining),
					ResetAfter: time.Duration(reset) * time.Microsecond,
				}, nil
			}
		}
		if len(v) == 2 {
			retry, ok1 := v[0].(int64)
			reset, ok2 := v[1].(int64)
			if ok1 && ok2 {
				return ratelimit.Result{
					Limit:      quota,
					RetryAfter: time.Duration(retry) * time.Microsecond,
					ResetAfter: time.Duration(reset) * time.Microsecond,
				}, nil
			}
		}
	}
	return ratelimit.Result{}, fmt.Errorf("unexpected script reply %v", reply)
}

// denyCache remembers refused keys until their RetryAfter.
type denyCache struct {
	mu  sync.Mutex
	max int
	m   map[string]denial
}

type denial struct {
	rate         ratelimit.Rate
	retry, reset time.Time
}

func (c *denyCache) get(key string, rate ratelimit.Rate, now time.Time) (ratelimit.Result, bool) {
	c.mu.Lock()
	d, ok := c.m[key]
	if ok && !now.Before(d.retry) {
		delete(c.m, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok || d.rate != rate {
		return ratelimit.Result{}, false
	}
	return ratelimit.Result{Limit: rate.Quota(), RetryAfter: d.retry.Sub(now), ResetAfter: d.reset.Sub(now)}, true
}

func (c *denyCache) put(key string, rate ratelimit.Rate, res ratelimit.Result, now time.Time) {
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
	c.m[key] = denial{rate: rate, retry: now.Add(res.RetryAfter), reset: now.Add(res.ResetAfter)}
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
	start := b.now()
	err := call(cctx)
	cancel()
	return b.finish(ctx, op, start, err)
}

// now returns the start time of a call for the latency histogram, or the
// zero time without metrics.
func (b *backend) now() time.Time {
	if b.latency == nil {
		return time.Time{}
	}
	return time.Now()
}

// finish observes the latency of a call that started at start and handles
// its error as described for do.
func (b *backend) finish(ctx context.Context, op string, start time.Time, err error) error {
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
	return promreg.MustRegister(reg, prometheus.NewHistogramVec(opts, labels))
}
