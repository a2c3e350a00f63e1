// Package redislimit shares rate and connection limits across instances
// through Redis.
//
// [Limiter] is the sliding window of ratelimit.Rate in one Lua script per
// decision: one round trip, atomic, Redis TIME as the clock (the app
// servers' clocks may differ). Each key holds its admission log, one entry
// per admitted request (so requests never collide), at most Limit entries
// (m*Limit with a burst, see ratelimit.Rate), and expires when its newest
// entry leaves the window (the m windows of a burst). The log of a quota of
// up to 64 is a packed string of 8-byte entries (TIME, GET and, when
// admitted, PSETEX per decision); that of a larger quota is a list, whose
// cost per decision does not grow with its length. A refusal writes
// nothing. If
// the Redis clock steps back behind the newest entry (a failover to a server
// whose clock is behind), time is taken as that entry's until the clock
// catches up: decisions are then stricter, never looser. The script runs
// with EVALSHA; after NOSCRIPT (a restarted or flushed server) it is sent
// again with EVAL.
//
// [Connections] caps concurrent connections per user. Each slot carries a
// lease that its holder renews (by default: lease 45 s, renewed every 15 s
// by [Connections.Run]), so that the slots of a crashed instance free
// themselves within one lease.
//
// When Redis fails, each limiter applies its ratelimit.FailMode: FailClosed
// (the default) refuses with an error of kind service_unavailable,
// FailOpen admits and counts the failure in
// rate_limit_backend_errors_total{mode="open"}. Every call is bounded by
// Config.Timeout (100 ms by default) through its context; [NewClient] builds
// a go-redis client whose own timeouts and retries respect that bound (the
// go-redis defaults do not: 5 s timeouts, 3 retries, context deadlines
// ignored).
package redislimit
