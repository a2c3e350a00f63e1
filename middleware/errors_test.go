package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/middleware"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		body       string
		retryAfter string
	}{
		{
			name:   "sentinel",
			err:    errConflict,
			status: 409,
			body:   `{"error":{"code":"conflict","msg":"author already exists","details":null}}`,
		},
		{
			name:   "wrapping context is not sent",
			err:    fmt.Errorf("repository: insert into authors (10.0.0.5): %w", errConflict),
			status: 409,
			body:   `{"error":{"code":"conflict","msg":"author already exists","details":null}}`,
		},
		{
			name:   "details",
			err:    detailErr{details: []map[string]string{{"path": "/name", "msg": "minLength: got 0, want 1"}}},
			status: 400,
			body:   `{"error":{"code":"invalid_data","msg":"data does not match","details":[{"msg":"minLength: got 0, want 1","path":"/name"}]}}`,
		},
		{
			name:   "unauthenticated",
			err:    auth.ErrTokenExpired,
			status: 401,
			body:   `{"error":{"code":"authentication_failed","msg":"token_expired","details":null}}`,
		},
		{
			name:       "rate limited rounds up",
			err:        retryErr{kind: errkind.RateLimited, after: 1500 * time.Millisecond},
			status:     429,
			body:       `{"error":{"code":"rate_limit_exceeded","msg":"limited","details":null}}`,
			retryAfter: "2",
		},
		{
			name:       "sub-second hint is at least 1",
			err:        retryErr{kind: errkind.Unavailable, after: time.Millisecond},
			status:     503,
			body:       `{"error":{"code":"service_unavailable","msg":"limited","details":null}}`,
			retryAfter: "1",
		},
		{
			name:       "503 without hint",
			err:        errkind.New(errkind.Unavailable, "identity provider unavailable"),
			status:     503,
			body:       `{"error":{"code":"service_unavailable","msg":"identity provider unavailable","details":null}}`,
			retryAfter: "1",
		},
		{
			name:   "too large",
			err:    middleware.ErrRequestTooLarge,
			status: 413,
			body:   `{"error":{"code":"request_too_large","msg":"request body too large","details":null}}`,
		},
		{
			name:   "unencodable details become null",
			err:    detailErr{details: math.Inf(1)},
			status: 400,
			body:   `{"error":{"code":"invalid_data","msg":"data does not match","details":null}}`,
		},
		{
			name:   "unknown error",
			err:    errors.New("pq: password authentication failed for user admin"),
			status: 500,
			body:   `{"error":{"code":"internal_error","msg":"internal server error","details":null}}`,
		},
		{
			name:   "context deadline is internal",
			err:    context.DeadlineExceeded,
			status: 500,
			body:   `{"error":{"code":"internal_error","msg":"internal server error","details":null}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			middleware.WriteError(rec, httptest.NewRequest("GET", "/x", nil), tc.err)
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.JSONEq(t, tc.body, rec.Body.String())
			assert.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
		})
	}
}

func TestWriteErrorLogsInternalOnce(t *testing.T) {
	logs := &syncBuffer{}
	h := middleware.CorrelationID(middleware.CorrelationIDConfig{Logger: jsonLogger(logs)})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			middleware.WriteError(w, r, errors.New("db at 10.0.0.5 is down"))
			middleware.WriteError(w, r, errConflict) // not internal: not logged
		}))
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set(middleware.HeaderCorrelationID, "abc-123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	assert.NotContains(t, rec.Body.String(), "10.0.0.5")
	lines := logs.lines(t)
	require.Len(t, lines, 1)
	assert.Equal(t, "ERROR", lines[0]["level"])
	assert.Equal(t, "abc-123", lines[0]["correlation_id"])
	assert.Equal(t, "db at 10.0.0.5 is down", lines[0]["error"])
}

func TestWriteErrorKeepsRetryAfterSetByLimiter(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "17")
	middleware.WriteError(rec, httptest.NewRequest("GET", "/", nil), errkind.New(errkind.RateLimited, "slow down"))
	assert.Equal(t, "17", rec.Header().Get("Retry-After"))
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	require.NoError(t, middleware.WriteJSON(rec, http.StatusCreated, map[string]int{"id": 7}))
	assert.Equal(t, 201, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.JSONEq(t, `{"id":7}`, rec.Body.String())

	rec = httptest.NewRecorder()
	require.NoError(t, middleware.WriteJSON(rec, http.StatusNoContent, nil))
	assert.Equal(t, 204, rec.Code)
	assert.Empty(t, rec.Body.String())

	rec = httptest.NewRecorder()
	err := middleware.WriteJSON(rec, http.StatusOK, map[string]any{"bad": make(chan int)})
	require.Error(t, err)
	assert.Equal(t, 500, rec.Code)
	assert.JSONEq(t, `{"error":{"code":"internal_error","msg":"internal server error","details":null}}`, rec.Body.String())
}

func TestNotFound(t *testing.T) {
	rec := httptest.NewRecorder()
	middleware.NotFound(rec, httptest.NewRequest("GET", "/missing", nil))
	assert.Equal(t, 404, rec.Code)
	assert.JSONEq(t, `{"error":{"code":"not_found","msg":"not found","details":null}}`, rec.Body.String())
}

func TestRoutesAnswersUnmatchedWithErrorBody(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /a", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("a")) })
	mux.HandleFunc("GET /dir/", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("dir")) })
	h := middleware.Routes(mux)

	tests := []struct {
		method, path string
		status       int
		body         string
		allow        string
		location     string
	}{
		{"GET", "/a", 200, "a", "", ""},
		{"GET", "/b", 404, `{"error":{"code":"not_found","msg":"not found","details":null}}`, "", ""},
		{"POST", "/a", 405, `{"error":{"code":"method_not_allowed","msg":"method not allowed","details":null}}`, "GET, HEAD", ""},
		{"GET", "/dir", 307, "", "", "/dir/"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			assert.Equal(t, tc.status, rec.Code)
			if strings.HasPrefix(tc.body, "{") {
				assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				assert.JSONEq(t, tc.body, rec.Body.String())
			} else if tc.body != "" {
				assert.Equal(t, tc.body, rec.Body.String())
			}
			assert.Equal(t, tc.allow, rec.Header().Get("Allow"))
			assert.Equal(t, tc.location, rec.Header().Get("Location"))
		})
	}
}
