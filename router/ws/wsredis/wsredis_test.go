package wsredis_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wsredis"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type pkg int32

const pkgPush pkg = 100

// instance is one server with an endpoint on the shared broker.
type instance struct {
	e   *ws.Endpoint[pkg]
	url string
	reg *prometheus.Registry
}

var users = auth.AuthenticatorFunc(func(_ context.Context, token string) (*auth.Principal, error) {
	return &auth.Principal{ID: token, Username: token}, nil
})

func newInstance(t *testing.T, redisURL, channel string) *instance {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	require.NoError(t, err)
	opt.MaxRetries = -1
	opt.DialTimeout = 200 * time.Millisecond
	opt.ReadTimeout = 300 * time.Millisecond
	opt.WriteTimeout = 300 * time.Millisecond
	client := redis.NewClient(opt)
	broker := wsredis.New(wsredis.Config{Client: client, Channel: channel, HealthInterval: 300 * time.Millisecond,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	r := router.New[pkg](router.Config{})
	reg := prometheus.NewRegistry()
	e := ws.New(r, ws.Config{Authenticator: users, Broker: broker, Registerer: reg, CloseGrace: 200 * time.Millisecond})
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, e.Shutdown(ctx))
		srv.Close()
		_ = client.Close()
	})
	return &instance{e: e, url: "ws" + strings.TrimPrefix(srv.URL, "http"), reg: reg}
}

func (in *instance) dial(t *testing.T, user string) *wstest.Client {
	t.Helper()
	c, err := wstest.Dial(context.Background(), in.url, user)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func next(t *testing.T, c *wstest.Client, within time.Duration) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	m, err := c.Next(ctx)
	if err != nil {
		return "", false
	}
	require.True(t, m.IsPush(), string(m.Raw))
	return string(m.Data), true
}

// crossDelivery pushes from a to user on b until one push arrives (the
// subscription may still be starting), then drains a's own copies.
func crossDelivery(t *testing.T, a *instance, bc, ac *wstest.Client, user string) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = a.e.PushToUser(context.Background(), user, pkgPush, "probe")
		if data, ok := next(t, bc, 100*time.Millisecond); ok {
			require.Equal(t, `"probe"`, data)
			for { // skip the remaining probes
				if _, ok := next(t, bc, 100*time.Millisecond); !ok {
					break
				}
			}
			for ac != nil {
				if _, ok := next(t, ac, 50*time.Millisecond); !ok {
					break
				}
			}
			return true
		}
	}
	return false
}

func TestSharedRedis(t *testing.T) {
	url := testenv.RedisURL(t)
	channel := testenv.RedisPrefix(t) + "ws"
	a, b := newInstance(t, url, channel), newInstance(t, url, channel)
	ca, cb := a.dial(t, "ada"), b.dial(t, "ada")
	cBob := b.dial(t, "bob")
	require.True(t, crossDelivery(t, a, cb, ca, "ada"), "push from a never reached b")

	require.NoError(t, a.e.PushToUser(context.Background(), "ada", pkgPush, "to ada"))
	for _, c := range []*wstest.Client{ca, cb} {
		data, ok := next(t, c, 5*time.Second)
		require.True(t, ok)
		assert.Equal(t, `"to ada"`, data)
	}
	require.NoError(t, b.e.Broadcast(context.Background(), pkgPush, "all"))
	for _, c := range []*wstest.Client{ca, cb, cBob} {
		data, ok := next(t, c, 5*time.Second)
		require.True(t, ok)
		assert.Equal(t, `"all"`, data, "exactly once per connection")
	}
	_, extra := next(t, cb, 100*time.Millisecond)
	assert.False(t, extra, "the publisher does not deliver its own push twice")
}

func TestRedisOutage(t *testing.T) {
	srv := testenv.StartRedis(t)
	channel := "ws-outage"
	a, b := newInstance(t, srv.URL(), channel), newInstance(t, srv.URL(), channel)
	ca, cb := a.dial(t, "ada"), b.dial(t, "ada")
	require.True(t, crossDelivery(t, a, cb, ca, "ada"))

	srv.Stop()
	for i := range 5 {
		err := a.e.PushToUser(context.Background(), "ada", pkgPush, i)
		assert.Error(t, err, "the publish fails while Redis is down")
		data, ok := next(t, ca, 2*time.Second)
		require.True(t, ok, "local delivery continues during the outage")
		assert.Equal(t, strconv.Itoa(i), data)
	}
	require.Eventually(t, func() bool {
		return counter(t, a.reg, "ws_broadcast_errors_total") >= 5 &&
			counter(t, b.reg, "ws_broadcast_errors_total") >= 1
	}, 5*time.Second, 10*time.Millisecond, "outage counted on both instances")

	srv.Start()
	require.True(t, crossDelivery(t, a, cb, ca, "ada"), "cross-instance delivery resumes")
	require.True(t, crossDelivery(t, b, ca, cb, "ada"), "in both directions")
}

func TestRedisHung(t *testing.T) {
	srv := testenv.StartRedis(t)
	a, b := newInstance(t, srv.URL(), "ws-hung"), newInstance(t, srv.URL(), "ws-hung")
	ca, cb := a.dial(t, "ada"), b.dial(t, "ada")
	require.True(t, crossDelivery(t, a, cb, ca, "ada"))

	srv.Pause()
	start := time.Now()
	err := a.e.PushToUser(context.Background(), "ada", pkgPush, "local")
	assert.Error(t, err, "the publish times out")
	assert.Less(t, time.Since(start), 3*time.Second)
	data, ok := next(t, ca, time.Second)
	require.True(t, ok, "local delivery does not wait for Redis")
	assert.Equal(t, `"local"`, data)
	require.Eventually(t, func() bool { return counter(t, b.reg, "ws_broadcast_errors_total") >= 1 },
		5*time.Second, 10*time.Millisecond, "the silent subscription is noticed")

	srv.Resume()
	require.True(t, crossDelivery(t, a, cb, ca, "ada"), "cross-instance delivery resumes")
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func TestConformance(t *testing.T) {
	url := testenv.RedisURL(t)
	channel := testenv.RedisPrefix(t) + "conformance"
	wstest.BrokerConformance(t, func(t *testing.T) ws.Broker {
		opt, err := redis.ParseURL(url)
		require.NoError(t, err)
		client := redis.NewClient(opt)
		t.Cleanup(func() { _ = client.Close() })
		return wsredis.New(wsredis.Config{Client: client, Channel: channel})
	})
}
