// Package ws is the WebSocket transport of pkgroute (PROTOCOL.md section
// 1): an http.Handler that turns each connection into a stream of
// PackageRouter dispatches, a hub that pushes to connections, fan-out of
// pushes across instances through a Broker, and a graceful drain.
//
// Upgrade: the Origin is checked against an allow-list (403), an
// Authorization header is verified before the upgrade (401), and the
// per-user connection cap is taken (429). Without a header the client
// authenticates with its first message, {"type":"auth","token":"Bearer
// <jwt>"}, answered by auth_ok (close 4001 on failure, 4002 on timeout,
// 1008 over the cap). Auth frames may be sent again at any time to
// refresh the token; the connection closes with 4003 when the token
// expires.
//
// Each connection has exactly two goroutines while idle: a reader
// (message size 1009, UTF-8 1007, binary 1003, message rate limit,
// duplicate req_id, up to MaxInflight concurrent requests, each in its own
// goroutine with a context cancelled when the connection closes) and a
// writer (a byte-bounded send queue with a write timeout, 1008 "slow
// consumer"; pings; the close handshake).
//
// Wiring with net/http: mount the Endpoint on a route and call
// Endpoint.Shutdown before http.Server.Shutdown (or register
// Endpoint.ShutdownHook with http.Server.RegisterOnShutdown), since the
// server does not track hijacked connections.
package ws
