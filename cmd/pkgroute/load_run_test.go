package main

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadCountsMatch(t *testing.T) {
	s := startServer(t, ws.Config{})
	for _, mode := range []string{AuthHeader, AuthFirstMessage} {
		t.Run(mode, func(t *testing.T) {
			rep, err := RunLoad(ctxT(t), LoadConfig{
				URL: s.url, Auth: mode, Token: "user.ada", Conns: 3, InFlight: 4,
				Requests: 120, Duration: time.Minute, Data: []byte(`{"n":1}`), Size: 100,
				PID: os.Getpid(),
			})
			require.NoError(t, err)
			assert.Equal(t, 3, rep.Connected)
			assert.EqualValues(t, 120, rep.Sent)
			assert.EqualValues(t, 120, rep.Completed)
			assert.EqualValues(t, 120, rep.OK)
			assert.Zero(t, rep.Unanswered)
			assert.Zero(t, rep.Unmatched)
			assert.Empty(t, rep.Statuses)
			assert.Empty(t, rep.CloseCodes)
			assert.Empty(t, rep.DialErrors)
			require.NotNil(t, rep.Latency)
			assert.LessOrEqual(t, rep.Latency.P50, rep.Latency.P90)
			assert.LessOrEqual(t, rep.Latency.P90, rep.Latency.P99)
			assert.LessOrEqual(t, rep.Latency.P99, rep.Latency.Max)
			assert.Positive(t, rep.Throughput)
			require.NotNil(t, rep.Server)
			assert.Empty(t, rep.Server.Error)
			assert.Positive(t, rep.Server.RSSAfterKB)
			assert.GreaterOrEqual(t, rep.Server.CPUSeconds, 0.0)
		})
	}
}

// Replies of one connection come back in reverse order of their
// requests; each is matched by its req_id.
func TestLoadMatchesOutOfOrderReplies(t *testing.T) {
	s := startServer(t, ws.Config{})
	rep, err := RunLoad(ctxT(t), LoadConfig{
		URL: s.url, Token: "user.ada", PkgID: int64(pkgReverse), Conns: 1, InFlight: reverseGroup,
		Requests: 10 * reverseGroup, Duration: time.Minute,
	})
	require.NoError(t, err)
	assert.EqualValues(t, 10*reverseGroup, rep.Completed)
	assert.EqualValues(t, 10*reverseGroup, rep.OK)
	assert.Zero(t, rep.Unmatched)
	assert.Zero(t, rep.Unanswered)
	s.rev.mu.Lock()
	defer s.rev.mu.Unlock()
	assert.Equal(t, 10*reverseGroup, s.rev.calls)
}

func TestLoadCountsErrorsByCode(t *testing.T) {
	s := startServer(t, ws.Config{})
	for _, tc := range []struct {
		pkg    pkg
		status int
		code   string
	}{
		{pkgInvalid, 2, "invalid_data"},
		{pkgAdmin, 3, "permission_denied"},
		{99, 1, "unknown_package"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			rep, err := RunLoad(ctxT(t), LoadConfig{
				URL: s.url, Token: "user.ada", PkgID: int64(tc.pkg), Conns: 2, InFlight: 2,
				Requests: 20, Duration: time.Minute,
			})
			require.NoError(t, err)
			assert.EqualValues(t, 20, rep.Completed)
			assert.Zero(t, rep.OK)
			assert.Equal(t, map[int]int64{tc.status: 20}, rep.Statuses)
			assert.Equal(t, map[string]int64{tc.code: 20}, rep.ErrorCodes)
		})
	}
	// With the role, the admin package answers.
	rep, err := RunLoad(ctxT(t), LoadConfig{URL: s.url, Token: "user.root.admin", PkgID: int64(pkgAdmin), Requests: 5, Duration: time.Minute})
	require.NoError(t, err)
	assert.EqualValues(t, 5, rep.OK)
}

// The message rate refuses requests (status 4) and closes the connection
// with 1008 after MaxConsecutiveLimited refusals.
func TestLoadCountsRateLimitAndClose(t *testing.T) {
	s := startServer(t, ws.Config{MessageRate: ratelimit.PerMinute(10), MaxConsecutiveLimited: 3})
	rep, err := RunLoad(ctxT(t), LoadConfig{URL: s.url, Token: "user.ada", Requests: 100, Duration: time.Minute})
	require.NoError(t, err)
	assert.EqualValues(t, 13, rep.Completed)
	assert.EqualValues(t, 10, rep.OK)
	assert.Equal(t, map[int]int64{4: 3}, rep.Statuses)
	assert.Equal(t, map[string]int64{"rate_limit_exceeded": 3}, rep.ErrorCodes)
	assert.Equal(t, map[int]int64{1008: 1}, rep.CloseCodes)
	assert.Equal(t, rep.Sent-rep.Completed, rep.Unanswered)
}

func TestLoadLogsIn(t *testing.T) {
	s := startServer(t, ws.Config{})
	rep, err := RunLoad(ctxT(t), LoadConfig{URL: s.url, Auth: AuthFirstMessage, User: "ada", Password: "secret", Requests: 5, Duration: time.Minute})
	require.NoError(t, err)
	assert.EqualValues(t, 5, rep.OK)

	_, err = RunLoad(ctxT(t), LoadConfig{URL: s.url, User: "ada", Password: "wrong", Requests: 5, Duration: time.Minute})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 401")
}

func TestLoadCountsRefusedConnections(t *testing.T) {
	s := startServer(t, ws.Config{AuthTimeout: 5 * time.Second})
	rep, err := RunLoad(ctxT(t), LoadConfig{URL: s.url, Token: "bad", Conns: 3, Duration: time.Minute})
	require.ErrorIs(t, err, ErrNoConnections)
	assert.Equal(t, map[string]int64{"http 401": 3}, rep.DialErrors)
	assert.NotEmpty(t, rep.FirstDialError)

	rep, err = RunLoad(ctxT(t), LoadConfig{URL: s.url, Token: "bad", Auth: AuthFirstMessage, Conns: 2, Duration: time.Minute})
	require.ErrorIs(t, err, ErrNoConnections)
	assert.Equal(t, map[string]int64{"close 4001": 2}, rep.DialErrors)

	// Without credentials the upgrade succeeds (first-message mode) and
	// the first request is taken for a bad auth frame: close 4001.
	rep, err = RunLoad(ctxT(t), LoadConfig{URL: s.url, Auth: AuthNone, Duration: time.Minute, Requests: 1})
	require.NoError(t, err)
	assert.Equal(t, map[int]int64{4001: 1}, rep.CloseCodes)
	assert.EqualValues(t, 1, rep.Unanswered)
}

func TestIdleHoldsConnections(t *testing.T) {
	s := startServer(t, ws.Config{})
	rep, err := RunLoad(ctxT(t), LoadConfig{
		URL: s.url, Token: "user.ada", Idle: true, Conns: 20, Duration: 50 * time.Millisecond,
		PID: os.Getpid(), SourceAddrs: 3,
	})
	require.NoError(t, err)
	assert.Equal(t, "idle", rep.Mode)
	assert.Equal(t, 20, rep.Connected)
	assert.Equal(t, 20, rep.Held)
	assert.Zero(t, rep.Sent)
	require.NotNil(t, rep.Server)
	assert.Empty(t, rep.Server.Error)
	require.NotNil(t, rep.Server.GoroutinesAfter)
	assert.EqualValues(t, 7, *rep.Server.GoroutinesAfter)
	assert.Positive(t, rep.Server.RSSAfterKB)
}

func TestLoopbackGuard(t *testing.T) {
	for _, u := range []string{"ws://192.0.2.1:8000/web", "ws://[2001:db8::1]/web", "wss://10.0.0.1/web"} {
		_, err := RunLoad(ctxT(t), LoadConfig{URL: u, Token: "x", Duration: time.Second})
		assert.ErrorIs(t, err, ErrNotLoopback, u)
	}
	// The login endpoint is a target too.
	_, err := RunLoad(ctxT(t), LoadConfig{URL: "ws://127.0.0.1:1/web", LoginURL: "http://192.0.2.1/auth/login", Duration: time.Second})
	assert.ErrorIs(t, err, ErrNotLoopback)

	cfg, err := LoadConfig{URL: "ws://192.0.2.1/web", Token: "x", AllowRemote: true}.withDefaults()
	require.NoError(t, err)
	assert.NoError(t, cfg.checkTargets(ctxT(t)))
	for _, h := range []string{"127.0.0.1", "127.3.2.1", "::1", "localhost"} {
		assert.NoError(t, checkLoopback(ctxT(t), h), h)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := LoadConfig{URL: "ws://127.0.0.1:1/web"}
	for name, mutate := range map[string]func(*LoadConfig){
		"no url":           func(c *LoadConfig) { c.URL = "" },
		"http url":         func(c *LoadConfig) { c.URL = "http://127.0.0.1/web" },
		"protocol":         func(c *LoadConfig) { c.Protocol = "mqtt" },
		"auth":             func(c *LoadConfig) { c.Auth = "cookie" },
		"conns":            func(c *LoadConfig) { c.Conns = -1 },
		"too many conns":   func(c *LoadConfig) { c.Conns = MaxConns + 1 },
		"in flight":        func(c *LoadConfig) { c.InFlight = MaxInFlight + 1 },
		"duration":         func(c *LoadConfig) { c.Duration = -time.Second },
		"duration too big": func(c *LoadConfig) { c.Duration = MaxDuration + time.Second },
		"requests":         func(c *LoadConfig) { c.Requests = -1 },
		"idle requests":    func(c *LoadConfig) { c.Idle, c.Requests = true, 5 },
		"size":             func(c *LoadConfig) { c.Size = MaxSize + 1 },
		"data not object":  func(c *LoadConfig) { c.Data = []byte(`[1]`) },
		"data not json":    func(c *LoadConfig) { c.Data = []byte(`{`) },
		"data has pad":     func(c *LoadConfig) { c.Data, c.Size = []byte(`{"pad":1}`), 3 },
		"pid":              func(c *LoadConfig) { c.PID = -2 },
		"sources":          func(c *LoadConfig) { c.SourceAddrs = MaxSourceAddrs + 1 },
		"drain":            func(c *LoadConfig) { c.DrainTimeout = -1 },
		"login url":        func(c *LoadConfig) { c.LoginURL = "ftp://x/y" },
	} {
		c := ok
		mutate(&c)
		_, err := RunLoad(ctxT(t), c)
		assert.ErrorIs(t, err, ErrInvalidConfig, name)
	}
	c, err := ok.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, ProtocolPkgroute, c.Protocol)
	assert.Equal(t, AuthHeader, c.Auth)
	assert.Equal(t, 1, c.Conns)
	assert.Equal(t, 1, c.InFlight)
	assert.Equal(t, DefaultDuration, c.Duration)
	assert.EqualValues(t, DefaultPkgID, c.PkgID)
	assert.Equal(t, "http://127.0.0.1:1/auth/login", c.LoginURL)
	assert.Equal(t, "http://127.0.0.1:1/metrics", c.MetricsURL)
	assert.JSONEq(t, `{}`, string(c.Data))
}

func TestBuildData(t *testing.T) {
	d, err := buildData([]byte(` {"a":1} `), 3)
	require.NoError(t, err)
	assert.JSONEq(t, `{"pad":"xxx","a":1}`, string(d))
	d, err = buildData(nil, 2)
	require.NoError(t, err)
	assert.JSONEq(t, `{"pad":"xx"}`, string(d))
	d, err = buildData([]byte(`{"a":[1]}`), 0)
	require.NoError(t, err)
	assert.Equal(t, `{"a":[1]}`, string(d))
}

func TestNoProcess(t *testing.T) {
	s := startServer(t, ws.Config{})
	rep, err := RunLoad(ctxT(t), LoadConfig{URL: s.url, Token: "user.ada", Requests: 2, Duration: time.Minute, PID: 1 << 30})
	require.NoError(t, err)
	require.NotNil(t, rep.Server)
	assert.Contains(t, rep.Server.Error, "no process")
	assert.False(t, errors.Is(err, ErrNoConnections))
}
