package middleware_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

func recoverStack(logs *syncBuffer, h http.HandlerFunc) http.Handler {
	return middleware.Chain(
		middleware.CorrelationID(middleware.CorrelationIDConfig{Logger: jsonLogger(logs)}),
		middleware.Recover(middleware.RecoverConfig{}),
	)(h)
}

func TestRecover(t *testing.T) {
	tests := []struct {
		name  string
		value any
	}{
		{"string", "boom"},
		{"classified error is still internal", errConflict},
		{"nil pointer", (*int)(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			h := recoverStack(logs, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				panic(tc.value)
			})
			req := httptest.NewRequest("GET", "/p", nil)
			req.Header.Set(middleware.HeaderCorrelationID, "corr-1")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			assert.Equal(t, http.StatusInternalServerError, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.JSONEq(t, `{"error":{"code":"internal_error","msg":"internal server error","details":null}}`, rec.Body.String())
			lines := logs.lines(t)
			require.Len(t, lines, 1, "logged once")
			assert.Equal(t, "ERROR", lines[0]["level"])
			assert.Equal(t, "corr-1", lines[0]["correlation_id"])
			assert.Contains(t, lines[0]["stack"], "recover_test.go", "the stack names the panic site")
		})
	}
}

func TestRecoverOwnLogger(t *testing.T) {
	own := &syncBuffer{}
	h := middleware.Chain(
		middleware.CorrelationID(middleware.CorrelationIDConfig{}),
		middleware.Recover(middleware.RecoverConfig{Logger: jsonLogger(own)}),
	)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("x") }))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(middleware.HeaderCorrelationID, "corr-2")
	h.ServeHTTP(httptest.NewRecorder(), req)
	lines := own.lines(t)
	require.Len(t, lines, 1)
	assert.Equal(t, "corr-2", lines[0]["correlation_id"])
}

func TestRecoverAbortHandlerPassesThrough(t *testing.T) {
	logs := &syncBuffer{}
	h := recoverStack(logs, func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	})
	assert.Empty(t, logs.String())
}

func TestRecoverAfterResponseStartedAborts(t *testing.T) {
	logs := &syncBuffer{}
	h := recoverStack(logs, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		panic("late")
	})
	rec := httptest.NewRecorder()
	assert.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	})
	assert.Equal(t, "partial", rec.Body.String())
	assert.Len(t, logs.lines(t), 1)
}

// After a panic answered with 500, the same keep-alive connection serves
// the next request.
func TestRecoverConnectionSurvives(t *testing.T) {
	logs := &syncBuffer{}
	h := recoverStack(logs, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		_, _ = io.WriteString(w, "fine")
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	var reused []bool
	do := func(path string) (int, string) {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	status, _ := do("/panic")
	assert.Equal(t, 500, status)
	status, body := do("/ok")
	assert.Equal(t, 200, status)
	assert.Equal(t, "fine", body)
	assert.Equal(t, []bool{false, true}, reused, "the second request reused the connection")
	assert.Equal(t, 1, strings.Count(logs.String(), `"msg":"panic"`))
}
