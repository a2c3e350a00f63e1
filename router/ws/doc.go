// Package ws is the WebSocket transport of pkgroute (docs/protocol.md section
// 1): an http.Handler that turns each connection into a stream of
// PackageRouter dispatches, a hub that pushes to connections, fan-out of
// pushes across instances through a Broker, and a graceful drain.
//
// # Upgrade and authentication
//
// The Origin is checked against an allow-list (403 origin_not_allowed); an
// Authorization header is verified before the upgrade (401
// authentication_failed with a Bearer challenge) and the per-user
// connection cap is taken (429 connection_limit_exceeded with
// Retry-After). Without a header the client authenticates with its first
// message, {"type":"auth","token":"Bearer <jwt>"}, answered by
// {"type":"auth_ok","user":...,"expires_at":...}; a bad frame or token
// closes with 4001, silence with 4002, and a user over the cap with 1008.
// Auth frames may be sent again at any time to refresh the token (same
// user only); a per-connection timer closes with 4003 when the token
// expires. Query-string tokens are refused unless Config.AllowQueryToken
// is set, and never logged.
//
// # Connections
//
// An idle connection has one goroutine, its reader; a writer goroutine runs
// while there is something to write, and pings run on a timer. The reader
// enforces the message size (1009), UTF-8 (1007) and text frames (1003),
// the message rates (a token bucket per connection, then the per-user
// limiter: status 4, then 1008 on sustained abuse) and
// unique in-flight req_ids (duplicate_request), then serves the request
// itself; a request still running after a short delay hands the reading
// over to another goroutine, so up to MaxInflight requests of a connection
// run at once, each with a context cancelled when the connection closes.
// Replies and pushes go through a byte-bounded send queue with a write
// timeout (1008 "slow consumer"); a reply with nothing queued before it is
// written at once by the goroutine that made it, the replies of pipelined
// requests leave in one write system call (each its own message), and the
// writer also runs the close handshake. Every connection has an id (ConnID in handler contexts);
// pushes target one connection, a user's connections, a role, or all.
//
// # Shutdown
//
// http.Server.Shutdown does not know hijacked connections: call
// Endpoint.Shutdown before the server's Shutdown, or register
// Endpoint.ShutdownHook with http.Server.RegisterOnShutdown. The server's
// Shutdown does not wait for such hooks, so an application using the hook
// must still call Endpoint.Shutdown (which waits for the drain) before it
// exits. Connections are closed with 1001 once their requests finished;
// when the drain deadline passes first, the requests are cancelled and the
// remaining connections are sent 1001 at once (best effort) and dropped.
package ws
