package redislimit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// The slots of a user are a sorted set: member = connection id, score = end
// of its lease in µs by the Redis clock. Expired leases are dropped before
// every decision; the key expires when its last lease does.

// acquireSlot: KEYS[1] the user's slots; ARGV: connection id, max, lease
// (µs) and, from tests only, the time (µs) to use instead of the Redis
// clock. Returns 1 when the slot is held (new or already held), else 0.
var acquireSlot = redis.NewScript(`
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  local ms = math.ceil(lease / 1000)
  if redis.call('PTTL', KEYS[1]) < ms then
    redis.call('PEXPIRE', KEYS[1], ms)
  end
  return 1
end
return 0
`)

// renewSlot: KEYS[1] the user's slots; ARGV: connection id, lease (µs)
// and, from tests only, the time (µs) to use instead of the Redis clock.
// Returns 1 when the lease was extended, 0 when the slot is not held.
var renewSlot = redis.NewScript(`
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local lease = tonumber(ARGV[2])
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
local ms = math.ceil(lease / 1000)
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('PEXPIRE', KEYS[1], ms)
end
return 1
`)

// releaseSlot: KEYS[1] the user's slots; ARGV[1] the connection id.
var releaseSlot = redis.NewScript(`return redis.call('ZREM', KEYS[1], ARGV[1])`)

// ConnectionsConfig configures [NewConnections]. The zero value means the
// documented defaults.
type ConnectionsConfig struct {
	// Prefix is prepended to the user to form the key of the user's slots
	// (default "ratelimit:conn:").
	Prefix string
	// Lease is how long a slot stays held without renewal (default 45 s).
	Lease time.Duration
	// RenewInterval is how often Run renews the leases of the slots this
	// instance holds (default Lease/3, 15 s).
	RenewInterval time.Duration
	// FailMode says what Acquire does when Redis cannot answer (default
	// ratelimit.FailClosed).
	FailMode ratelimit.FailMode
	// Timeout bounds each Redis call (default DefaultTimeout, 100 ms).
	Timeout time.Duration
	// RetryAfter is the retry hint of errors when failing closed (default
	// ratelimit.DefaultRetryAfter).
	RetryAfter time.Duration
	// Logger receives backend failures and lost leases (warn); nil
	// discards.
	Logger *slog.Logger
	// Registerer receives rate_limit_backend_errors_total{mode} and
	// rate_limit_redis_duration_seconds{op}; nil means no metrics.
	Registerer prometheus.Registerer
}

// Connections is the Redis ratelimit.ConnectionLimiter. Its slots carry a
// lease: either call [Connections.Run] once (it renews every slot this
// instance holds) or call Renew for each connection more often than the
// lease. Slots of an instance that stops renewing free themselves within one
// lease.
type Connections struct {
	client  redis.Scripter
	cfg     ConnectionsConfig
	backend *backend
	log     *slog.Logger

	mu   sync.Mutex
	held map[slot]int // slots acquired here and not released -> their max

	// clock, when set (by tests), replaces the Redis clock of leases.
	clock func() time.Time
}

type slot struct{ user, connID string }

// NewConnections returns a Connections that keeps its slots in Redis
// through client.
func NewConnections(client redis.Scripter, cfg ConnectionsConfig) *Connections {
	if cfg.Prefix == "" {
		cfg.Prefix = "ratelimit:conn:"
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 45 * time.Second
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = cfg.Lease / 3
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Connections{
		client:  client,
		cfg:     cfg,
		backend: newBackend(cfg.FailMode, cfg.Timeout, cfg.RetryAfter, log, cfg.Registerer, ratelimit.NewMetrics(cfg.Registerer)),
		log:     log,
		held:    make(map[slot]int),
	}
}

// Acquire takes a slot with a fresh lease for connID when user holds fewer
// than max live slots. When Redis fails it follows the fail mode: closed
// returns an error of kind service_unavailable; open admits the connection
// (Run acquires its slot once Redis answers again).
func (c *Connections) Acquire(ctx context.Context, user, connID string, max int) (bool, error) {
	var ok bool
	err := c.backend.do(ctx, "acquire", func(ctx context.Context) error {
		n, err := acquireSlot.Run(ctx, c.client, []string{c.cfg.Prefix + user},
			c.args(connID, max, c.cfg.Lease.Microseconds())...).Int64()
		ok = n == 1
		return err
	})
	if err != nil {
		if ctx.Err() != nil || c.backend.mode == ratelimit.FailClosed {
			return false, err
		}
		ok = true
	}
	if ok {
		c.mu.Lock()
		c.held[slot{user, connID}] = max
		c.mu.Unlock()
	}
	return ok, nil
}

// Release frees connID's slot. Releasing a slot that is not held is not an
// error. When Redis fails the error is returned and the slot frees itself
// when its lease ends.
func (c *Connections) Release(ctx context.Context, user, connID string) error {
	c.mu.Lock()
	delete(c.held, slot{user, connID})
	c.mu.Unlock()
	return c.backend.do(ctx, "release", func(ctx context.Context) error {
		return releaseSlot.Run(ctx, c.client, []string{c.cfg.Prefix + user}, connID).Err()
	})
}

// Renew extends the lease of connID's slot. It returns an error wrapping
// ratelimit.ErrNotHeld when the slot is not held (released, or its lease
// ended), and an error of kind service_unavailable when Redis fails.
func (c *Connections) Renew(ctx context.Context, user, connID string) error {
	return c.backend.do(ctx, "renew", func(ctx context.Context) error {
		n, err := renewSlot.Run(ctx, c.client, []string{c.cfg.Prefix + user},
			c.args(connID, c.cfg.Lease.Microseconds())...).Int64()
		if err == nil && n == 0 {
			return ratelimit.ErrNotHeld
		}
		return err
	})
}

// Run renews the leases of the slots acquired through c and not released,
// every RenewInterval, until ctx ends; it returns nil then. A slot whose
// lease was lost (Redis restarted without data, or an outage longer than
// the lease) is acquired again when the user is under the cap; otherwise
// the loss is logged and the connection keeps running over the cap.
func (c *Connections) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.renewAll(ctx)
		}
	}
}

func (c *Connections) renewAll(ctx context.Context) {
	c.mu.Lock()
	slots := make(map[slot]int, len(c.held))
	for s, max := range c.held {
		slots[s] = max
	}
	c.mu.Unlock()
	for s, max := range slots {
		if ctx.Err() != nil {
			return
		}
		err := c.Renew(ctx, s.user, s.connID)
		if err == nil || !isNotHeld(err) {
			continue // renewed, or Redis failed (already logged): try next time
		}
		c.mu.Lock()
		_, still := c.held[s]
		c.mu.Unlock()
		if !still {
			continue // released meanwhile
		}
		var ok bool
		err = c.backend.do(ctx, "acquire", func(ctx context.Context) error {
			n, err := acquireSlot.Run(ctx, c.client, []string{c.cfg.Prefix + s.user},
				c.args(s.connID, max, c.cfg.Lease.Microseconds())...).Int64()
			ok = n == 1
			return err
		})
		if err == nil && !ok {
			c.log.LogAttrs(ctx, slog.LevelWarn, "connection slot lease lost and the user is at the cap",
				slog.String("user", s.user), slog.String("conn_id", s.connID))
		}
	}
}

// args returns the arguments of a lease script: args, and the time of the
// clock when one is set.
func (c *Connections) args(args ...any) []any {
	if c.clock != nil {
		args = append(args, c.clock().UnixMicro())
	}
	return args
}

func isNotHeld(err error) bool { return errors.Is(err, ratelimit.ErrNotHeld) }
