package middleware

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// DefaultMaxBodyBytes is the body limit when BodyLimitConfig.MaxBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// BodyLimitConfig configures [BodyLimit].
type BodyLimitConfig struct {
	// MaxBytes is the largest accepted request body; zero or negative means
	// DefaultMaxBodyBytes (1 MiB).
	MaxBytes int64
}

// BodyLimit refuses request bodies larger than the limit with 413
// request_too_large.
//
// A Content-Length over the limit is refused before the inner handler runs;
// so is, on a connection accepted by [Listener] and served by [NewServer],
// a chunked body whose chunk-size lines already declare more, and a read
// that waits for the data of such a chunk fails at once instead of at the
// read timeout. Other bodies (chunked ones) are counted while they are read, never
// buffered: the read that goes past the limit returns an error that matches
// both [ErrRequestTooLarge] and *http.MaxBytesError, and the response
// becomes 413 whatever the handler does next: a header or body it writes
// afterwards is replaced by the 413 answer, and if it writes nothing the 413
// is sent when it returns. Only a handler that had already started its
// response before reading past the limit keeps its own answer; the error
// from Read is then its only signal.
func BodyLimit(cfg BodyLimitConfig) Middleware {
	limit := cfg.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				answerTooLarge(w, r, limit)
				return
			}
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			lb := &limitedBody{rc: r.Body, remaining: limit, limit: limit}
			if f, _ := r.Context().Value(framingKey{}).(*framing); f != nil && r.ContentLength < 0 {
				// A chunked body: its chunk-size lines declare what follows.
				lb.framing, lb.req = f, f.served.Load()
				if f.limitBody(lb.req, limit) {
					answerTooLarge(w, r, limit)
					return
				}
			}
			lw := &respWriter{w: w}
			lw.intercept = func(int) bool {
				if !lb.exceeded.Load() {
					return false
				}
				answerTooLarge(w, r, limit)
				return true
			}
			r2 := r.WithContext(r.Context())
			r2.Body = lb
			next.ServeHTTP(lw, r2)
			if lb.exceeded.Load() && !lw.written() {
				lw.WriteHeader(http.StatusRequestEntityTooLarge)
			}
		})
	}
}

func tooLarge(limit int64) error {
	return fmt.Errorf("%w: %w", ErrRequestTooLarge, &http.MaxBytesError{Limit: limit})
}

func answerTooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	// The rest of the body is not worth reading: close the connection after
	// the answer instead of draining it.
	w.Header().Set("Connection", "close")
	WriteError(w, r, tooLarge(limit))
}

// limitedBody counts a request body while it is read and fails the read
// that would go past the limit.
type limitedBody struct {
	rc        io.ReadCloser
	remaining int64
	limit     int64
	exceeded  atomic.Bool
	framing   *framing // with [Listener] and [NewServer], for chunked bodies
	req       int64    // the request's number in framing
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.exceeded.Load() {
		return 0, tooLarge(b.limit)
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Read one byte more than allowed, to tell "exactly at the limit" from
	// "over it".
	if int64(len(p)) > b.remaining+1 {
		p = p[:b.remaining+1]
	}
	n, err := b.rc.Read(p)
	if err != nil && b.framing != nil && b.framing.declaredOver(b.req, b.limit) {
		// The chunks declared more than the limit; framing woke this read.
		b.exceeded.Store(true)
		return min(n, int(b.remaining)), tooLarge(b.limit)
	}
	if int64(n) <= b.remaining {
		b.remaining -= int64(n)
		return n, err
	}
	n = int(b.remaining)
	b.remaining = 0
	b.exceeded.Store(true)
	return n, tooLarge(b.limit)
}

func (b *limitedBody) Close() error { return b.rc.Close() }
