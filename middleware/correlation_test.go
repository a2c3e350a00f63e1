package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestCorrelationID(t *testing.T) {
	tests := []struct {
		name   string
		header string
		keep   bool
	}{
		{"simple", "abc-123", true},
		{"all allowed characters", "AZaz09._-", true},
		{"one character", "x", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"empty", "", false},
		{"space", "abc 123", false},
		{"newline injection", "abc\r\nSet-Cookie: x", false},
		{"slash", "a/b", false},
		{"non-ascii", "abcé", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			var ctxID string
			h := middleware.CorrelationID(middleware.CorrelationIDConfig{Logger: jsonLogger(logs)})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctxID = middleware.CorrelationIDFrom(r.Context())
					middleware.LoggerFrom(r.Context()).Info("inside")
					middleware.WriteError(w, r, errConflict)
				}))
			req := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				req.Header.Set(middleware.HeaderCorrelationID, tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			got := rec.Header().Get(middleware.HeaderCorrelationID)
			if tc.keep {
				assert.Equal(t, tc.header, got)
			} else {
				assert.Regexp(t, uuidRE, got)
			}
			assert.Equal(t, got, ctxID)
			lines := logs.lines(t)
			require.Len(t, lines, 1)
			assert.Equal(t, got, lines[0]["correlation_id"])
		})
	}
}

func TestCorrelationIDWithoutLogger(t *testing.T) {
	h := middleware.CorrelationID(middleware.CorrelationIDConfig{})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			require.NotNil(t, middleware.LoggerFrom(r.Context()))
			middleware.LoggerFrom(r.Context()).Info("discarded")
		}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Regexp(t, uuidRE, rec.Header().Get(middleware.HeaderCorrelationID))
	assert.Empty(t, middleware.CorrelationIDFrom(httptest.NewRequest("GET", "/", nil).Context()))
}
