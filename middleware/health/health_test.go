package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pkgroute/pkgroute/middleware/health"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ok(context.Context) error { return nil }

func down(context.Context) error { return errors.New("dial tcp 127.0.0.1:6379: connection refused") }

// hang blocks until its context ends, as a stuck dependency would.
func hang(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func wsFields(n int) func() []health.Field {
	return func() []health.Field { return []health.Field{{Key: "active_connections", Value: n}} }
}

func TestHealthBody(t *testing.T) {
	tests := []struct {
		name   string
		checks []health.Check
		status int
		body   string
	}{
		{
			name: "all healthy, redis disabled",
			checks: []health.Check{
				{Name: "database", Func: ok},
				{Name: "redis"},
				{Name: "websocket", Func: ok, Fields: wsFields(3)},
			},
			status: 200,
			body:   `{"status":"healthy","database":"healthy","redis":"disabled","websocket":{"status":"healthy","active_connections":3}}`,
		},
		{
			name: "configured redis down",
			checks: []health.Check{
				{Name: "database", Func: ok},
				{Name: "redis", Func: down},
				{Name: "websocket", Func: ok, Fields: wsFields(0)},
			},
			status: 503,
			body:   `{"status":"unhealthy","database":"healthy","redis":"unhealthy","websocket":{"status":"healthy","active_connections":0}}`,
		},
		{
			name: "database hangs past the timeout",
			checks: []health.Check{
				{Name: "database", Func: hang},
				{Name: "redis", Func: ok},
				{Name: "websocket", Func: ok, Fields: wsFields(1)},
			},
			status: 503,
			body:   `{"status":"unhealthy","database":"unhealthy","redis":"healthy","websocket":{"status":"healthy","active_connections":1}}`,
		},
		{
			name: "websocket draining",
			checks: []health.Check{
				{Name: "database", Func: ok},
				{Name: "redis", Func: ok},
				{Name: "websocket", Func: func(context.Context) error { return errors.New("draining") }, Fields: wsFields(2)},
			},
			status: 503,
			body:   `{"status":"unhealthy","database":"healthy","redis":"healthy","websocket":{"status":"unhealthy","active_connections":2}}`,
		},
		{
			name:   "no checks",
			status: 200,
			body:   `{"status":"healthy"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := health.New(health.Config{Checks: tc.checks, Timeout: 100 * time.Millisecond})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, tc.body+"\n", rec.Body.String(), "exact body, keys in order")
			assert.NotContains(t, rec.Body.String(), "6379", "errors are not sent")
		})
	}
}

func TestHealthChecksRunConcurrently(t *testing.T) {
	var running, peak atomic.Int64
	slow := func(ctx context.Context) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer running.Add(-1)
		select {
		case <-time.After(50 * time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h := health.New(health.Config{Checks: []health.Check{
		{Name: "a", Func: slow}, {Name: "b", Func: slow}, {Name: "c", Func: slow},
	}, Timeout: 5 * time.Second})
	rep := h.Check(context.Background())
	assert.True(t, rep.Healthy())
	assert.Equal(t, int64(3), peak.Load(), "all checks ran at the same time")
	for _, r := range rep.Results {
		assert.Equal(t, health.StatusHealthy, r.Status)
		assert.NoError(t, r.Err)
	}
}

func TestHealthTimeoutBoundsTheAnswer(t *testing.T) {
	h := health.New(health.Config{Checks: []health.Check{{Name: "database", Func: hang}}, Timeout: 50 * time.Millisecond})
	start := time.Now()
	rep := h.Check(context.Background())
	assert.Less(t, time.Since(start), 2*time.Second)
	require.Len(t, rep.Results, 1)
	assert.ErrorIs(t, rep.Results[0].Err, context.DeadlineExceeded)
	assert.False(t, rep.Healthy())
}

func TestHealthNewPanicsOnBadNames(t *testing.T) {
	for _, checks := range [][]health.Check{
		{{Name: "db", Func: ok}, {Name: "db", Func: ok}},
		{{Name: "status", Func: ok}},
		{{Name: "", Func: ok}},
	} {
		assert.Panics(t, func() { health.New(health.Config{Checks: checks}) })
	}
}

func TestLive(t *testing.T) {
	rec := httptest.NewRecorder()
	health.Live().ServeHTTP(rec, httptest.NewRequest("GET", "/live", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"status":"alive"}`, rec.Body.String())
}

func TestReportMarshalError(t *testing.T) {
	rep := health.Report{Status: health.StatusHealthy, Results: []health.Result{
		{Name: "x", Status: health.StatusHealthy, Fields: []health.Field{{Key: "bad", Value: make(chan int)}}},
	}}
	_, err := rep.MarshalJSON()
	assert.Error(t, err)

	h := health.New(health.Config{Checks: []health.Check{{Name: "x", Func: ok, Fields: func() []health.Field {
		return []health.Field{{Key: "bad", Value: make(chan int)}}
	}}}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"status":"unhealthy"}`, rec.Body.String())
}
