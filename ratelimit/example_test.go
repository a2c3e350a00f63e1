package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
)

// A sliding window of 3 requests per minute with a burst of 1: four requests
// are admitted, the fifth waits for the first to leave the window.
func ExampleMemory() {
	limiter := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	rate := ratelimit.Rate{Limit: 3, Window: time.Minute, Burst: 1}
	for range 5 {
		res, err := limiter.Allow(context.Background(), "user:alice", rate)
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Allowed, res.Remaining, res.RetryAfter.Round(time.Minute))
	}
	// Output:
	// true 3 0s
	// true 2 0s
	// true 1 0s
	// true 0 0s
	// false 0 1m0s
}

// A per-connection message limit: 2 messages per second, taken at once,
// then one every 500 ms.
func ExampleBucket() {
	bucket := ratelimit.NewBucket(ratelimit.Rate{Limit: 2, Window: time.Second})
	start := time.Now()
	for _, at := range []time.Duration{0, 0, 0, 500 * time.Millisecond} {
		ok, retryAfter := bucket.Take(start.Add(at))
		fmt.Println(ok, retryAfter)
	}
	// Output:
	// true 0s
	// true 0s
	// false 500ms
	// true 0s
}

// The HTTP middleware writes the rate limit headers on every response and
// refuses with 429 once the quota is used, with Retry-After: the seconds
// until the oldest request leaves the window (60 here). Key reads the
// authenticated user (here from a header, in an app from its principal);
// anonymous requests are limited by client IP.
func ExampleMiddleware() {
	limit := ratelimit.Middleware(ratelimit.Config{
		Limiter: ratelimit.NewMemory(ratelimit.MemoryConfig{}),
		Rate:    ratelimit.Rate{Limit: 2, Window: time.Minute},
		Key:     func(r *http.Request) string { return r.Header.Get("X-User") },
	})
	h := limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/api/authors", nil)
		r.Header.Set("X-User", "alice")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Printf("%d %s remaining=%s retry-after set: %t\n", w.Code, w.Header().Get("RateLimit-Policy"),
			w.Header().Get("X-RateLimit-Remaining"), w.Header().Get("Retry-After") != "")
	}
	// Output:
	// 200 "default";q=2;w=60 remaining=1 retry-after set: false
	// 200 "default";q=2;w=60 remaining=0 retry-after set: false
	// 429 "default";q=2;w=60 remaining=0 retry-after set: true
}

// Connection slots per user: the third connection of a user capped at 2 is
// refused until one is released.
func ExampleMemoryConnections() {
	ctx := context.Background()
	conns := ratelimit.NewMemoryConnections()
	for _, id := range []string{"c1", "c2", "c3"} {
		ok, _ := conns.Acquire(ctx, "alice", id, 2)
		fmt.Println(id, ok)
	}
	_ = conns.Release(ctx, "alice", "c1")
	ok, _ := conns.Acquire(ctx, "alice", "c3", 2)
	fmt.Println("c3 after release", ok)
	// Output:
	// c1 true
	// c2 true
	// c3 false
	// c3 after release true
}
