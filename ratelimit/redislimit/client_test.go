package redislimit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/ratelimit/redislimit"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClientOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		url         string
		timeout     time.Duration
		wantTimeout time.Duration
		wantRetries int
	}{
		{"defaults", "redis://127.0.0.1:6379/0", 0, 100 * time.Millisecond, -1},
		{"given timeout", "redis://127.0.0.1:6379/0", 250 * time.Millisecond, 250 * time.Millisecond, -1},
		{"url settings win", "redis://127.0.0.1:6379/0?dial_timeout=2&read_timeout=2&write_timeout=2&pool_timeout=2&max_retries=1", 0, 2 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt, err := redis.ParseURL(tt.url)
			require.NoError(t, err)
			opt = redislimit.ClientOptions(opt, tt.timeout)
			assert.Equal(t, tt.wantTimeout, opt.DialTimeout)
			assert.Equal(t, tt.wantTimeout, opt.ReadTimeout)
			assert.Equal(t, tt.wantTimeout, opt.WriteTimeout)
			assert.Equal(t, tt.wantTimeout, opt.PoolTimeout)
			assert.Equal(t, tt.wantRetries, opt.MaxRetries)
			assert.Equal(t, 1, opt.DialerRetries)
			assert.True(t, opt.ContextTimeoutEnabled)
		})
	}
	_, err := redislimit.NewClient("http://nope", 0)
	assert.Error(t, err)
}

func TestCanceledCallerIsNotABackendFailure(t *testing.T) {
	t.Parallel()
	client, prefix := sharedClient(t)
	for _, mode := range []ratelimit.FailMode{ratelimit.FailClosed, ratelimit.FailOpen} {
		l := redislimit.New(client, redislimit.Config{Prefix: prefix, FailMode: mode})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := l.Allow(ctx, "k", ratelimit.PerSecond(10))
		assert.True(t, errors.Is(err, context.Canceled), "mode %v: %v", mode, err)
		assert.NotErrorIs(t, err, ratelimit.ErrUnavailable)
		assert.False(t, res.Allowed)
	}
}

func TestUnreachableRedisFollowsFailMode(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	client, err := redislimit.NewClient(srv.URL(), 0)
	require.NoError(t, err)
	defer client.Close()
	srv.Stop()
	rate := ratelimit.Rate{Limit: 10, Window: time.Minute, Burst: 5}

	res, err := redislimit.New(client, redislimit.Config{FailMode: ratelimit.FailOpen}).Allow(context.Background(), "k", rate)
	require.NoError(t, err)
	assert.Equal(t, ratelimit.FailOpenResult(rate), res)

	_, err = redislimit.New(client, redislimit.Config{RetryAfter: 3 * time.Second}).Allow(context.Background(), "k", rate)
	require.ErrorIs(t, err, ratelimit.ErrUnavailable)
	var ue *ratelimit.UnavailableError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, 3*time.Second, ue.RetryAfter())
}
