package ws_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
)

// TestFaultLogsAreRateLimited checks that a failing broker and a failing
// message limiter, hit by every push and every message, log once per
// LogInterval instead of once per failure.
func TestFaultLogsAreRateLimited(t *testing.T) {
	var logs testenv.Buffer
	limiter := ratelimit.LimiterFunc(func(context.Context, string, ratelimit.Rate) (ratelimit.Result, error) {
		return ratelimit.Result{}, ratelimit.Unavailable(errors.New("redis down"), time.Second)
	})
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, Limiter: limiter,
		Broker: failingBroker{ws.NewMemoryBroker()}, LogInterval: time.Hour,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	c := f.dial("user.ada")
	for range 200 {
		require.Error(t, f.e.Broadcast(ctxT(t), pkgPush, 1))
	}
	for range 50 {
		m, err := c.Call(ctxT(t), int64(pkgPing), nil)
		require.NoError(t, err)
		require.Equal(t, router.StatusError, m.StatusCode())
	}
	assert.Equal(t, 1, strings.Count(logs.String(), `"msg":"ws: push broker failed"`), logs.String())
	assert.Equal(t, 1, strings.Count(logs.String(), `"msg":"ws: message limiter failed"`), logs.String())
	assert.Equal(t, 200.0, f.counter("ws_broadcast_errors_total"), "every failure is still counted")
}
