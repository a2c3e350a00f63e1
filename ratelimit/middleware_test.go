package ratelimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
})

func serve(h http.Handler, path, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Msg     string `json:"msg"`
		Details any    `json:"details"`
	} `json:"error"`
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var body errorBody
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&body))
	return body
}

func TestMiddlewareHeadersAndRefusal(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := ratelimit.Middleware(ratelimit.Config{
		Limiter:    ratelimit.NewMemory(ratelimit.MemoryConfig{}),
		Rate:       ratelimit.Rate{Limit: 5, Window: time.Minute},
		Registerer: reg,
	})(okHandler)

	for want := 4; want >= 0; want-- {
		w := serve(h, "/api/authors", "192.0.2.1:1234", nil)
		require.Equal(t, http.StatusOK, w.Code)
		r := strconv.Itoa(want)
		assert.Equal(t, `"default";q=5;w=60`, w.Header().Get("RateLimit-Policy"))
		assert.Equal(t, `"default";r=`+r+`;t=60`, w.Header().Get("RateLimit"))
		assert.Equal(t, "5", w.Header().Get("X-RateLimit-Limit"))
		assert.Equal(t, r, w.Header().Get("X-RateLimit-Remaining"))
		assert.Equal(t, "60", w.Header().Get("X-RateLimit-Reset"))
		assert.Empty(t, w.Header().Get("Retry-After"))
	}
	w := serve(h, "/api/authors", "192.0.2.1:1234", nil)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, `"default";q=5;w=60`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"default";r=0;t=60`, w.Header().Get("RateLimit"))
	assert.Equal(t, "0", w.Header().Get("X-RateLimit-Remaining"))
	assert.Equal(t, "60", w.Header().Get("X-RateLimit-Reset"))
	assert.Equal(t, "60", w.Header().Get("Retry-After"))
	body := decodeError(t, w)
	assert.Equal(t, "rate_limit_exceeded", body.Error.Code)
	assert.NotEmpty(t, body.Error.Msg)
	assert.Nil(t, body.Error.Details)

	// Unknown paths are limited too; another client IP has its own quota.
	w = serve(h, "/no/such/path", "192.0.2.1:999", nil)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	w = serve(h, "/no/such/path", "192.0.2.2:1234", nil)
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "4", w.Header().Get("X-RateLimit-Remaining"))

	assert.Equal(t, 2.0, testutil.ToFloat64(hitCounter(t, reg, "per_ip")))
}

func hitCounter(t *testing.T, reg *prometheus.Registry, limitType string) prometheus.Collector {
	t.Helper()
	// Registering the same vector again returns the existing one.
	return ratelimitHits(reg).WithLabelValues(limitType)
}

func ratelimitHits(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rate_limit_hits_total",
		Help: "Requests, messages or connections refused by a limit.",
	}, []string{"limit_type"})
	var are prometheus.AlreadyRegisteredError
	if err := reg.Register(c); errors.As(err, &are) {
		return are.ExistingCollector.(*prometheus.CounterVec)
	}
	return c
}

func TestMiddlewareRetryAfterWithinWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		retry     time.Duration
		reset     time.Duration
		window    time.Duration
		burst     int
		wantRetry string
		wantReset string
		wantW     string
	}{
		{"rounded up", 1500 * time.Millisecond, 2500 * time.Millisecond, time.Minute, 0, "2", "3", "60"},
		{"at least one second", time.Millisecond, time.Millisecond, time.Minute, 0, "1", "1", "60"},
		{"sub-second window", 300 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond, 0, "1", "1", "1"},
		{"at most the window", 90 * time.Second, 90 * time.Second, time.Minute, 0, "60", "90", "60"},
		{"with a burst, up to two windows", 90 * time.Second, 100 * time.Second, time.Minute, 1, "90", "100", "60"},
		{"with a burst, at most two windows", 150 * time.Second, 150 * time.Second, time.Minute, 1, "120", "150", "60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := ratelimit.LimiterFunc(func(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
				return ratelimit.Result{Limit: rate.Quota(), RetryAfter: tt.retry, ResetAfter: tt.reset}, nil
			})
			h := ratelimit.Middleware(ratelimit.Config{Limiter: lim, Rate: ratelimit.Rate{Limit: 3, Window: tt.window, Burst: tt.burst}})(okHandler)
			w := serve(h, "/", "", nil)
			require.Equal(t, http.StatusTooManyRequests, w.Code)
			assert.Equal(t, tt.wantRetry, w.Header().Get("Retry-After"))
			assert.Equal(t, tt.wantReset, w.Header().Get("X-RateLimit-Reset"))
			assert.Equal(t, `"default";r=0;t=`+tt.wantReset, w.Header().Get("RateLimit"))
			assert.Equal(t, fmt.Sprintf(`"default";q=%d;w=%s`, 3+tt.burst, tt.wantW), w.Header().Get("RateLimit-Policy"))
		})
	}
}

func TestMiddlewareKeys(t *testing.T) {
	t.Parallel()
	var keys []string
	lim := ratelimit.LimiterFunc(func(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
		keys = append(keys, key)
		return ratelimit.Result{Limit: rate.Quota(), RetryAfter: time.Second, ResetAfter: time.Second}, nil
	})
	reg := prometheus.NewRegistry()
	trusted, err := ratelimit.ParsePrefixes("10.0.0.0/8")
	require.NoError(t, err)
	h := ratelimit.Middleware(ratelimit.Config{
		Limiter:    lim,
		Rate:       ratelimit.PerMinute(10),
		Key:        func(r *http.Request) string { return r.Header.Get("X-Test-User") },
		ClientIP:   ratelimit.ClientIP(trusted),
		Registerer: reg,
	})(okHandler)
	serve(h, "/", "198.51.100.7:1", map[string]string{"X-Test-User": "alice"})
	serve(h, "/", "198.51.100.7:1", nil)
	serve(h, "/", "10.1.2.3:1", map[string]string{"X-Forwarded-For": "203.0.113.9, 10.0.0.5"})
	serve(h, "/", "198.51.100.7:1", map[string]string{"X-Forwarded-For": "203.0.113.9"})
	assert.Equal(t, []string{"user:alice", "ip:198.51.100.7", "ip:203.0.113.9", "ip:198.51.100.7"}, keys)
	assert.Equal(t, 1.0, testutil.ToFloat64(ratelimitHits(reg).WithLabelValues("per_user")))
	assert.Equal(t, 3.0, testutil.ToFloat64(ratelimitHits(reg).WithLabelValues("per_ip")))
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted, err := ratelimit.ParsePrefixes("10.0.0.0/8", "::1", " ", "192.168.1.1")
	require.NoError(t, err)
	clientIP := ratelimit.ClientIP(trusted)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"no header", "198.51.100.7:1", nil, "198.51.100.7"},
		{"untrusted peer ignores header", "198.51.100.7:1", []string{"1.2.3.4"}, "198.51.100.7"},
		{"trusted peer", "10.0.0.1:1", []string{"1.2.3.4"}, "1.2.3.4"},
		{"skips trusted hops from the right", "10.0.0.1:1", []string{"6.6.6.6, 1.2.3.4, 10.9.9.9, 192.168.1.1"}, "1.2.3.4"},
		{"several headers", "10.0.0.1:1", []string{"6.6.6.6", "1.2.3.4, 10.0.0.2"}, "1.2.3.4"},
		{"all trusted gives the leftmost", "10.0.0.1:1", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"garbage stops at the last good hop", "10.0.0.1:1", []string{"1.2.3.4, junk, 10.0.0.2"}, "10.0.0.2"},
		{"hop with port", "10.0.0.1:1", []string{"1.2.3.4:5678"}, "1.2.3.4"},
		{"ipv6 trusted peer", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"ipv4-mapped peer", "[::ffff:10.0.0.1]:80", []string{"1.2.3.4"}, "1.2.3.4"},
		{"trusted peer without header", "10.0.0.1:1", nil, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			assert.Equal(t, tt.want, clientIP(r))
		})
	}
	assert.Equal(t, "198.51.100.7", ratelimit.ClientIP(nil)(&http.Request{RemoteAddr: "198.51.100.7:9", Header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}}))
	_, err = ratelimit.ParsePrefixes("10.0.0.0/99")
	assert.Error(t, err)
}

func TestMiddlewareExcludedPaths(t *testing.T) {
	t.Parallel()
	calls := 0
	lim := ratelimit.LimiterFunc(func(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
		calls++
		return ratelimit.Result{}, nil
	})
	tests := []struct {
		name    string
		exclude []string
		path    string
		limited bool
	}{
		{"default health", nil, "/health", false},
		{"default metrics", nil, "/metrics", false},
		{"default other", nil, "/web", true},
		{"custom", []string{"/web"}, "/web", false},
		{"custom replaces defaults", []string{"/web"}, "/health", true},
		{"empty excludes nothing", []string{}, "/metrics", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = 0
			h := ratelimit.Middleware(ratelimit.Config{Limiter: lim, Rate: ratelimit.PerSecond(1), Exclude: tt.exclude})(okHandler)
			w := serve(h, tt.path, "", nil)
			if tt.limited {
				assert.Equal(t, 1, calls)
				assert.Equal(t, http.StatusTooManyRequests, w.Code)
			} else {
				assert.Zero(t, calls)
				assert.Equal(t, http.StatusOK, w.Code)
				assert.Empty(t, w.Header().Get("RateLimit"))
			}
		})
	}
}

func TestMiddlewareShadowNeverRefuses(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	h := ratelimit.Middleware(ratelimit.Config{
		Limiter:    ratelimit.NewMemory(ratelimit.MemoryConfig{}),
		Rate:       ratelimit.Rate{Limit: 2, Window: time.Minute},
		Shadow:     true,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		Registerer: reg,
	})(okHandler)
	for range 5 {
		w := serve(h, "/", "192.0.2.1:1", nil)
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Empty(t, w.Header().Get("RateLimit"))
	}
	assert.Equal(t, 3.0, testutil.ToFloat64(ratelimitHits(reg).WithLabelValues("per_ip")))
	assert.Equal(t, 3, bytes.Count(logs.Bytes(), []byte("rate limit exceeded (shadow)")))
}

func TestMiddlewareLimiterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		shadow     bool
		wantStatus int
		wantCode   string
		wantRetry  string
	}{
		{"fail closed", ratelimit.Unavailable(errors.New("dial tcp: refused"), 2500*time.Millisecond), false, 503, "service_unavailable", "3"},
		{"fail closed default retry", ratelimit.Unavailable(errors.New("timeout"), 0), false, 503, "service_unavailable", "1"},
		{"unknown error", errors.New("boom"), false, 500, "internal_error", ""},
		{"shadow lets it through", ratelimit.Unavailable(errors.New("timeout"), 0), true, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := ratelimit.LimiterFunc(func(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
				return ratelimit.Result{}, tt.err
			})
			h := ratelimit.Middleware(ratelimit.Config{Limiter: lim, Rate: ratelimit.PerSecond(1), Shadow: tt.shadow})(okHandler)
			w := serve(h, "/", "", nil)
			require.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, tt.wantRetry, w.Header().Get("Retry-After"))
			assert.Empty(t, w.Header().Get("RateLimit"), "the count is unknown")
			assert.Empty(t, w.Header().Get("X-RateLimit-Remaining"))
			if tt.wantStatus == 503 {
				assert.Equal(t, `"default";q=1;w=1`, w.Header().Get("RateLimit-Policy"), "the quota is known")
				assert.Equal(t, "1", w.Header().Get("X-RateLimit-Limit"))
			}
			if tt.wantCode != "" {
				body := decodeError(t, w)
				assert.Equal(t, tt.wantCode, body.Error.Code)
				assert.NotContains(t, body.Error.Msg, "refused", "backend errors do not leak")
			}
		})
	}
}

func TestMiddlewarePanicsOnBadConfig(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { ratelimit.Middleware(ratelimit.Config{Rate: ratelimit.PerSecond(1)}) })
	assert.Panics(t, func() { ratelimit.Middleware(ratelimit.Config{Limiter: ratelimit.NewMemory(ratelimit.MemoryConfig{})}) })
}

// TestMiddlewareLimiterFailuresAreLoggedOncePerInterval: a failing backend
// fails every request; the log gets one line for them.
func TestMiddlewareLimiterFailuresAreLoggedOncePerInterval(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	lim := ratelimit.LimiterFunc(func(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
		return ratelimit.Result{}, ratelimit.Unavailable(errors.New("dial tcp: refused"), time.Second)
	})
	h := ratelimit.Middleware(ratelimit.Config{Limiter: lim, Rate: ratelimit.PerSecond(1),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})(okHandler)
	for range 50 {
		assert.Equal(t, http.StatusServiceUnavailable, serve(h, "/", "192.0.2.1:1", nil).Code)
	}
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("rate limiter failed")), logs.String())
}
