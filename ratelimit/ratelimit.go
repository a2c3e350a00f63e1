package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
)

// Rate is a sliding-window limit with an optional burst.
//
// Without Burst, a key is admitted at most Limit requests in any span of
// Window: a request at time t is admitted exactly when fewer than Limit
// requests of the same key were admitted in (t-Window, t]. Refused requests
// are not counted.
//
// Burst is extra short-term allowance, borrowed from the windows that
// follow. With m = 1 + ceil(Burst/Limit) (m = 2 while Burst <= Limit), a
// request at t is admitted exactly when both hold:
//
//   - fewer than Limit+Burst requests were admitted in (t-Window, t], and
//   - fewer than m*Limit requests were admitted in (t-m*Window, t].
//
// So an idle key may send Limit+Burst requests at once, no Window ever
// holds more than Limit+Burst, and no span of m windows more than m*Limit:
// the sustained rate stays Limit per Window. For example 60 per minute
// with a burst of 20 admits 80 requests in the first minute and then 40 in
// the next; steady traffic at 60 per minute is never refused.
//
// The limiters and the HTTP headers report Limit+Burst as the quota of a
// Window. A key's log holds at most m*Limit entries and lives m windows
// after its last admission (one window without burst).
//
// For a [Bucket] the same Rate means a token bucket: tokens refill at Limit
// per Window and at most Limit+Burst are held, so up to Limit+Burst messages
// may arrive at once and Limit per Window are sustained.
type Rate struct {
	// Limit is the number of requests per Window; it must be positive.
	Limit int
	// Window is the length of the sliding window; it must be positive.
	Window time.Duration
	// Burst is the extra allowance on top of Limit; it must not be negative.
	Burst int
}

// PerSecond returns a Rate of n requests per second without burst.
func PerSecond(n int) Rate { return Rate{Limit: n, Window: time.Second} }

// PerMinute returns a Rate of n requests per minute without burst.
func PerMinute(n int) Rate { return Rate{Limit: n, Window: time.Minute} }

// Quota returns Limit+Burst, the most requests admitted in any Window.
func (r Rate) Quota() int { return r.Limit + r.Burst }

// Sustained returns the longer span that bounds a burst and the most
// requests admitted in it: m*Window and m*Limit with m = 1 +
// ceil(Burst/Limit). Without Burst it is Window and Limit. r must be valid.
func (r Rate) Sustained() (span time.Duration, quota int) {
	m := r.windows()
	return time.Duration(m) * r.Window, m * r.Limit
}

// windows returns m = 1 + ceil(Burst/Limit) without overflow, for a
// positive Limit and a Burst that is not negative.
func (r Rate) windows() int {
	m := 1 + r.Burst/r.Limit
	if r.Burst%r.Limit != 0 {
		m++
	}
	return m
}

// Validate returns an error wrapping [ErrInvalidRate] when r cannot be
// enforced.
func (r Rate) Validate() error {
	switch {
	case r.Limit <= 0:
		return fmt.Errorf("%w: limit %d must be positive", ErrInvalidRate, r.Limit)
	case r.Window <= 0:
		return fmt.Errorf("%w: window %v must be positive", ErrInvalidRate, r.Window)
	case r.Burst < 0:
		return fmt.Errorf("%w: burst %d must not be negative", ErrInvalidRate, r.Burst)
	case r.Burst > math.MaxInt-r.Limit:
		return fmt.Errorf("%w: limit %d plus burst %d is too large", ErrInvalidRate, r.Limit, r.Burst)
	}
	if m := r.windows(); m > math.MaxInt/r.Limit || int64(r.Window) > math.MaxInt64/int64(m) {
		return fmt.Errorf("%w: burst %d too large for limit %d and window %v", ErrInvalidRate, r.Burst, r.Limit, r.Window)
	}
	return nil
}

// String formats r as "limit+burst/window", e.g. "100+20/1m0s".
func (r Rate) String() string {
	return fmt.Sprintf("%d+%d/%v", r.Limit, r.Burst, r.Window)
}

// Result is the decision on one request.
type Result struct {
	// Allowed reports whether the request was admitted (and counted).
	Allowed bool
	// Limit is the quota enforced in one window, Rate.Limit+Rate.Burst.
	Limit int
	// Remaining is how many more requests the key may make now; it counts
	// the current request, so it is Limit-1 after the first request of a
	// fresh key and 0 when the request was refused.
	Remaining int
	// ResetAfter is the time until the key's full quota is available again,
	// when every counted request has left the window.
	ResetAfter time.Duration
	// RetryAfter is zero when Allowed; otherwise the time until the next
	// request of the key can be admitted (the oldest counted request leaves
	// the window).
	RetryAfter time.Duration
}

// Limiter decides whether a request under key may proceed at rate.
//
// Implementations are safe for concurrent use. A non-nil error means no
// decision was made: an invalid rate ([ErrInvalidRate]) or a backend that
// fails closed ([ErrUnavailable], kind service_unavailable, with a retry
// hint). A backend that fails open returns an allowed Result and no error.
type Limiter interface {
	Allow(ctx context.Context, key string, rate Rate) (Result, error)
}

// LimiterFunc adapts a function to [Limiter].
type LimiterFunc func(ctx context.Context, key string, rate Rate) (Result, error)

// Allow calls f.
func (f LimiterFunc) Allow(ctx context.Context, key string, rate Rate) (Result, error) {
	return f(ctx, key, rate)
}

// FailMode says what a limiter does when its backend cannot answer.
type FailMode uint8

const (
	// FailClosed refuses: the limiter returns an error of kind
	// service_unavailable (wrapping [ErrUnavailable]) with a retry hint.
	FailClosed FailMode = iota
	// FailOpen admits the request and counts the failure.
	FailOpen
)

// String returns "closed" or "open", the value of the mode label of
// rate_limit_backend_errors_total.
func (m FailMode) String() string {
	if m == FailOpen {
		return "open"
	}
	return "closed"
}

// ParseFailMode parses "open" or "closed" ("" = closed).
func ParseFailMode(s string) (FailMode, error) {
	switch s {
	case "", "closed":
		return FailClosed, nil
	case "open":
		return FailOpen, nil
	}
	return FailClosed, fmt.Errorf("ratelimit: unknown fail mode %q (want open or closed)", s)
}

var (
	// ErrInvalidRate is wrapped by errors about a Rate that cannot be
	// enforced (a configuration mistake).
	ErrInvalidRate = errkind.New(errkind.Internal, "invalid rate")
	// ErrUnavailable is wrapped by the errors of limiters whose backend
	// failed while failing closed; its kind is service_unavailable.
	ErrUnavailable = errkind.New(errkind.Unavailable, "rate limiter unavailable")
	// ErrNotHeld is returned by ConnectionLimiter.Renew for a slot that is
	// not held (released, or its lease ran out).
	ErrNotHeld = errkind.New(errkind.Internal, "connection slot not held")
)

// DefaultRetryAfter is the retry hint of [Unavailable] errors when none is
// configured.
const DefaultRetryAfter = time.Second

// UnavailableError is the error of a limiter that failed closed. It wraps the
// backend's error, matches [ErrUnavailable] with errors.Is, has the kind
// service_unavailable and tells when to retry.
type UnavailableError struct {
	// Err is the backend's error.
	Err error
	// Retry is the retry hint; zero means DefaultRetryAfter.
	Retry time.Duration
}

// Unavailable returns an [UnavailableError] for the backend error err.
func Unavailable(err error, retryAfter time.Duration) error {
	return &UnavailableError{Err: err, Retry: retryAfter}
}

// Error returns "rate limiter unavailable". It does not repeat the
// backend's error, which may name hosts and addresses: the error reaches
// clients as a reply's msg. Unwrap gives it, and the limiters log it.
func (e *UnavailableError) Error() string {
	return "rate limiter unavailable"
}

// Unwrap returns the backend's error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// ErrorKind returns errkind.Unavailable.
func (e *UnavailableError) ErrorKind() errkind.Kind { return errkind.Unavailable }

// RetryAfter returns the retry hint.
func (e *UnavailableError) RetryAfter() time.Duration {
	if e.Retry <= 0 {
		return DefaultRetryAfter
	}
	return e.Retry
}

// FailOpenResult is the Result that limiters failing open return: the
// request is admitted as if it were the first of its window.
func FailOpenResult(rate Rate) Result {
	q := rate.Quota()
	return Result{Allowed: true, Limit: q, Remaining: max(q-1, 0), ResetAfter: rate.Window}
}
