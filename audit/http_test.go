package audit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHTTPMiddleware(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authors/{id}", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("DELETE /authors/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) })
	mux.HandleFunc("POST /limited", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTooManyRequests) })
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {})
	h := audit.Middleware(l, audit.HTTPConfig{
		Identify: func(r *http.Request) (audit.Identity, bool) {
			if r.Header.Get("X-User") == "" {
				return audit.Identity{}, false
			}
			return audit.Identity{UserID: r.Header.Get("X-User"), Username: "name", Roles: []string{"r"}}, true
		},
		Skip: func(r *http.Request) bool { return r.URL.Path == "/health" },
	})(mux)

	do := func(method, target, user string) {
		req := httptest.NewRequest(method, target, nil)
		req.RemoteAddr = "198.51.100.4:5555"
		req.Header.Set("User-Agent", "ua/2")
		req.Header.Set("X-Correlation-ID", "corr-9")
		if user != "" {
			req.Header.Set("X-User", user)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	do("GET", "/authors/7?password=p&page=2", "u1")
	do("DELETE", "/authors/7", "u1")
	do("POST", "/limited", "u1")
	do("GET", "/nowhere", "u1")
	do("GET", "/authors/8", "") // anonymous: not audited
	do("GET", "/health", "u1")  // skipped
	require.NoError(t, l.Close(context.Background()))

	rows := sink.stored()
	require.Len(t, rows, 4)
	tests := []struct {
		action, resource string
		status           int
		outcome          audit.Outcome
	}{
		{"HTTP:GET", "/authors/{id}", 200, audit.Success},
		{"HTTP:DELETE", "/authors/{id}", 403, audit.PermissionDenied},
		{"HTTP:POST", "/limited", 429, audit.RateLimited},
		{"HTTP:GET", "/nowhere", 404, audit.Error},
	}
	for i, tt := range tests {
		e := rows[i]
		assert.Equal(t, tt.action, e.ActionType)
		assert.Equal(t, tt.resource, e.Resource)
		require.NotNil(t, e.ResponseStatus)
		assert.Equal(t, tt.status, *e.ResponseStatus)
		assert.Equal(t, tt.outcome, e.Outcome)
		assert.Equal(t, "u1", e.UserID)
		assert.Equal(t, "198.51.100.4", e.IPAddress)
		assert.Equal(t, "ua/2", e.UserAgent)
		assert.Equal(t, "corr-9", e.RequestID)
	}
	assert.JSONEq(t, `{"page":["2"],"password":"[REDACTED]"}`, string(rows[0].RequestData))
	assert.Equal(t, "Forbidden", rows[1].ErrorMessage)

	assert.Panics(t, func() { audit.Middleware(l, audit.HTTPConfig{}) })
}

func TestOutcomeOfHTTPStatus(t *testing.T) {
	for status, want := range map[int]audit.Outcome{200: audit.Success, 201: audit.Success, 302: audit.Success,
		400: audit.Error, 401: audit.Error, 403: audit.PermissionDenied, 404: audit.Error, 429: audit.RateLimited, 500: audit.Error} {
		assert.Equal(t, want, audit.OutcomeOfHTTPStatus(status), status)
	}
}

// TestHTTPMiddlewareAmend: Amend sees each entry with its outcome, may
// change it, and drops it by returning false.
func TestHTTPMiddlewareAmend(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	h := audit.Middleware(l, audit.HTTPConfig{
		Identify: func(*http.Request) (audit.Identity, bool) { return audit.Identity{UserID: "u1"}, true },
		Amend: func(r *http.Request, e *audit.Entry) bool {
			if e.Outcome != audit.RateLimited {
				return false
			}
			e.ActionType = "HTTP:CUSTOM"
			return true
		},
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/limited" {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	for _, target := range []string{"/ok", "/limited"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", target, nil))
	}
	require.NoError(t, l.Close(context.Background()))
	rows := sink.stored()
	require.Len(t, rows, 1)
	assert.Equal(t, "HTTP:CUSTOM", rows[0].ActionType)
	assert.Equal(t, audit.RateLimited, rows[0].Outcome)
	assert.EqualValues(t, 429, *rows[0].ResponseStatus)
}

func TestHTTPMiddlewarePassesHijackAndFlush(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /upgrade", func(w http.ResponseWriter, _ *http.Request) {
		h, ok := w.(http.Hijacker)
		if !ok {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		conn, rw, err := h.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: close\r\n\r\n")
		_ = rw.Flush()
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("a"))
		w.(http.Flusher).Flush()
	})
	srv := httptest.NewServer(audit.Middleware(l, audit.HTTPConfig{
		Identify: func(*http.Request) (audit.Identity, bool) { return audit.Identity{UserID: "u"}, true },
	})(mux))
	defer srv.Close()
	for _, path := range []string{"/upgrade", "/stream"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
	}
	srv.Close()
	// httptest.Server.Close does not wait for hijacked handlers: the
	// upgrade's entry may still be on its way.
	require.Eventually(t, func() bool { return l.Stats().Produced == 2 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, l.Close(context.Background()))
	rows := sink.stored()
	require.Len(t, rows, 2)
	status := map[string]int{}
	for _, e := range rows {
		status[e.Resource] = *e.ResponseStatus
	}
	assert.Equal(t, map[string]int{"/upgrade": http.StatusSwitchingProtocols, "/stream": http.StatusOK}, status)
}

func identifyAll(r *http.Request) (audit.Identity, bool) {
	return audit.Identity{UserID: "u1"}, true
}

func TestHTTPMiddlewareLevels(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	mux.Handle("GET /full", ok)
	mux.Handle("GET /meta", audit.WithLevel(audit.LevelMetadata, ok))
	mux.Handle("GET /none", audit.WithLevel(audit.LevelNone, ok))
	h := audit.Middleware(l, audit.HTTPConfig{Identify: identifyAll})(mux)
	for _, target := range []string{"/full?q=1", "/meta?q=1", "/none?q=1"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", target, nil))
	}
	require.NoError(t, l.Close(context.Background()))
	rows := sink.stored()
	require.Len(t, rows, 2)
	assert.Equal(t, "/full", rows[0].Resource)
	assert.JSONEq(t, `{"q":["1"]}`, string(rows[0].RequestData))
	assert.Equal(t, "/meta", rows[1].Resource)
	assert.Nil(t, rows[1].RequestData)
}

func TestHTTPMiddlewareWriteAhead(t *testing.T) {
	sink := newMemSink()
	gate := make(chan struct{})
	sink.setGate(gate)
	// Room for one entry, and the sink does not take it.
	l := audit.New(audit.Config{Sink: sink, QueueSize: 1, WriteAhead: true})
	closeFn := run(t, l)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /things", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Made", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":1}`))
		http.NewResponseController(w).Flush() // held anyway
	})
	mux.Handle("GET /free", audit.WithLevel(audit.LevelNone, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("free"))
	})))
	h := audit.Middleware(l, audit.HTTPConfig{Identify: identifyAll})(mux)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/things", nil))
	assert.Equal(t, http.StatusCreated, rec.Code)
	assert.Equal(t, `{"id":1}`, rec.Body.String())
	assert.Equal(t, "yes", rec.Header().Get("X-Made"))

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/things", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"error":{"code":"service_unavailable","msg":"the request could not be audited","details":null}}`, rec.Body.String())
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Empty(t, rec.Header().Get("X-Made"), "headers of the withheld response are not sent")

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/free", nil))
	assert.Equal(t, "free", rec.Body.String())

	close(gate)
	require.NoError(t, closeFn(5*time.Second))
	st := l.Stats()
	assert.Equal(t, uint64(1), st.Written)
	assert.Equal(t, uint64(1), st.DroppedBy[audit.DropQueueFull])
}
