// Package ratelimit limits how often a caller may act and how many
// WebSocket connections a user may hold.
//
// The request limit is a sliding window: a [Rate] admits at most Limit
// requests per key in any span of Window, and Burst lets an idle key send
// up to Limit+Burst at once, borrowed from the following windows (see
// [Rate] for the exact rule). A [Limiter] decides one request at a time and reports the
// figures the HTTP headers need in a [Result]. [NewMemory] is the in-process
// implementation (sharded, bounded, idle keys evicted lazily, no goroutine);
// package redislimit shares the limit across instances through Redis.
//
// [Bucket] is a token bucket for per-connection message limits: a value
// type without locks or allocations, owned by the connection's read loop.
//
// [ConnectionLimiter] caps concurrent connections per user;
// [NewMemoryConnections] is the in-process implementation and package
// redislimit has one whose slots carry leases, so that the slots of a crashed
// instance free themselves.
//
// [Middleware] applies a Limiter to HTTP requests and writes the headers of
// the wire contract (RateLimit-Policy, RateLimit, X-RateLimit-*), 429 with
// Retry-After when the limit is exceeded and 503 when a limiter failing
// closed cannot decide. The package imports no other pkgroute package: an
// application that wants per-user limits passes a [Config].Key function that
// reads its authenticated principal.
//
// Backends that fail either admit the request and count the failure
// ([FailOpen]) or refuse it with an error of kind service_unavailable that
// carries a retry hint ([FailClosed], the default).
package ratelimit
