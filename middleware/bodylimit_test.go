package middleware_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

// countingReader produces n bytes without holding them and counts what was
// taken from it.
type countingReader struct {
	n    int64
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	left := c.n - c.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	for i := range p {
		p[i] = 'x'
	}
	c.read.Add(int64(len(p)))
	return len(p), nil
}

// onlyReader hides the length of a reader so the request is chunked.
type onlyReader struct{ io.Reader }

type bodyServer struct {
	srv  *httptest.Server
	seen atomic.Int64 // bytes the handler got from the body
	errs atomic.Int64 // read errors that matched ErrRequestTooLarge and *http.MaxBytesError
}

// newBodyServer serves a handler that reads the whole body and ignores the
// error, behind BodyLimit with the given limit.
func newBodyServer(t *testing.T, limit int64) *bodyServer {
	t.Helper()
	bs := &bodyServer{}
	h := middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: limit})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, err := io.Copy(io.Discard, r.Body)
			bs.seen.Store(n)
			var mbe *http.MaxBytesError
			if errors.Is(err, middleware.ErrRequestTooLarge) && errors.As(err, &mbe) {
				bs.errs.Add(1)
			}
			// The read error is ignored: the middleware must still answer 413.
			_ = middleware.WriteJSON(w, http.StatusOK, map[string]int64{"read": n})
		}))
	bs.srv = httptest.NewServer(h)
	t.Cleanup(bs.srv.Close)
	return bs
}

func post(t *testing.T, srv *httptest.Server, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL, body)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestBodyLimit(t *testing.T) {
	const limit = middleware.DefaultMaxBodyBytes
	tests := []struct {
		name    string
		size    int64
		chunked bool
		status  int
	}{
		{"exact limit", limit, false, 200},
		{"limit plus one", limit + 1, false, 413},
		{"chunked exact limit", limit, true, 200},
		{"chunked limit plus one", limit + 1, true, 413},
		{"empty", 0, false, 200},
	}
	bs := newBodyServer(t, 0) // zero: the 1 MiB default
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs.seen.Store(-1)
			var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), int(tc.size)))
			if tc.chunked {
				body = onlyReader{body}
			}
			resp, got := post(t, bs.srv, body)
			require.Equal(t, tc.status, resp.StatusCode, got)
			if tc.status == 200 {
				assert.JSONEq(t, `{"read":`+jsonInt(tc.size)+`}`, got)
				return
			}
			assert.JSONEq(t, `{"error":{"code":"request_too_large","msg":"request body too large","details":null}}`, got)
			if tc.chunked {
				assert.Equal(t, int64(limit), bs.seen.Load(), "the handler got exactly the limit")
			} else {
				assert.Equal(t, int64(-1), bs.seen.Load(), "refused before the handler ran")
			}
		})
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// A chunked body far over the limit is cut off after the limit: neither the
// server nor the client moves the whole body.
func TestBodyLimitChunkedStreamNotBuffered(t *testing.T) {
	const limit = 1 << 10
	const total = 256 << 20
	bs := newBodyServer(t, limit)
	src := &countingReader{n: total}
	resp, got := post(t, bs.srv, onlyReader{src})
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, got)
	assert.Equal(t, int64(limit), bs.seen.Load())
	assert.Equal(t, int64(1), bs.errs.Load(), "the read error matches ErrRequestTooLarge and *http.MaxBytesError")
	assert.Less(t, src.read.Load(), int64(total/4), "the server stopped reading long before the end")
}

func TestBodyLimitHandlerHandlesError(t *testing.T) {
	h := middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: 4})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				middleware.WriteError(w, r, err)
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
	req := httptest.NewRequest("POST", "/", onlyReader{strings.NewReader("12345")})
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.Equal(t, "close", rec.Header().Get("Connection"))
	assert.JSONEq(t, `{"error":{"code":"request_too_large","msg":"request body too large","details":null}}`, rec.Body.String())
}

func TestBodyLimitHandlerSilent(t *testing.T) {
	h := middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: 4})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // then writes nothing
		}))
	req := httptest.NewRequest("POST", "/", onlyReader{strings.NewReader("12345")})
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
}

// A handler that answered before reading past the limit keeps its answer;
// the read error is its signal (documented behaviour).
func TestBodyLimitAfterResponseStarted(t *testing.T) {
	var readErr error
	h := middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: 4})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_, readErr = io.Copy(io.Discard, r.Body)
		}))
	req := httptest.NewRequest("POST", "/", onlyReader{strings.NewReader("12345")})
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusAccepted, rec.Code)
	assert.ErrorIs(t, readErr, middleware.ErrRequestTooLarge)
}
