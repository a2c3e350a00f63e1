package wsredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pkgroute/pkgroute/internal/lograte"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/redis/go-redis/v9"
)

// Client is the part of a go-redis client the broker uses; *redis.Client
// and *redis.ClusterClient implement it.
type Client interface {
	Publish(ctx context.Context, channel string, message any) *redis.IntCmd
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
}

// Defaults of Config.
const (
	DefaultChannel        = "pkgroute:ws:push"
	DefaultHealthInterval = 15 * time.Second
	DefaultRetryMin       = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
)

// Config configures a Broker. Client is required.
type Config struct {
	// Client talks to Redis.
	Client Client
	// Channel is the pub/sub channel shared by the instances (default
	// "pkgroute:ws:push").
	Channel string
	// HealthInterval is how long the subscription may stay silent before
	// it is pinged; a ping unanswered for another interval counts as an
	// outage (default 15 s).
	HealthInterval time.Duration
	// RetryMin and RetryMax bound the backoff between reconnection
	// attempts (default 100 ms and 5 s).
	RetryMin, RetryMax time.Duration
	// Logger receives the start and the end of outages, and undecodable
	// messages (at most one record per 10 s, counting those left out); nil
	// discards.
	Logger *slog.Logger
}

// Broker is the Redis ws.Broker.
type Broker struct {
	cfg  Config
	log  *slog.Logger
	flog *lograte.Logger // records a publisher can repeat
}

var _ ws.Broker = (*Broker)(nil)

// New returns a Broker. It panics without a Client.
func New(cfg Config) *Broker {
	if cfg.Client == nil {
		panic("wsredis: Config.Client is required")
	}
	if cfg.Channel == "" {
		cfg.Channel = DefaultChannel
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Broker{cfg: cfg, log: log, flog: lograte.New(log, 0, nil)}
}

// Publish publishes m on the channel.
func (b *Broker) Publish(ctx context.Context, m ws.Message) error {
	payload, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("wsredis: encode: %w", err)
	}
	if err := b.cfg.Client.Publish(ctx, b.cfg.Channel, payload).Err(); err != nil {
		return fmt.Errorf("wsredis: publish: %w", err)
	}
	return nil
}

// Run subscribes to the channel and delivers every message until ctx is
// done, resubscribing after failures, which it reports.
func (b *Broker) Run(ctx context.Context, deliver func(ws.Message), report func(error)) error {
	if report == nil {
		report = func(error) {}
	}
	wait := b.cfg.RetryMin
	down := false
	for {
		err := b.subscribe(ctx, deliver, func() {
			if down {
				b.log.Info("wsredis: subscription restored", "channel", b.cfg.Channel)
				down = false
			}
			wait = b.cfg.RetryMin
		})
		if ctx.Err() != nil {
			return nil
		}
		report(err)
		if !down {
			b.log.Warn("wsredis: subscription lost; retrying", "channel", b.cfg.Channel, "error", err)
			down = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(wait*2, b.cfg.RetryMax)
	}
}

var errSilent = errors.New("wsredis: subscription did not answer a ping")

// subscribe runs one subscription until it fails or ctx is done.
func (b *Broker) subscribe(ctx context.Context, deliver func(ws.Message), ready func()) error {
	ps := b.cfg.Client.Subscribe(ctx, b.cfg.Channel)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		stop()
		_ = ps.Close()
	}()
	pinged := false
	subscribed := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, b.cfg.HealthInterval)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			if pinged || !subscribed {
				return errSilent
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if !subscribed {
				subscribed = true
				ready()
			}
		case *redis.Message:
			var wm ws.Message
			if err := json.Unmarshal([]byte(m.Payload), &wm); err != nil {
				b.flog.Warn("wsredis: undecodable message", "channel", b.cfg.Channel, "error", err)
				continue
			}
			deliver(wm)
		}
	}
}
