// Package server assembles the standard, secure pkgroute service in one
// call: from a package router and a Config it builds the HTTP middleware
// stack, the WebSocket endpoint, the HTTP package bridge, the catalogue,
// health, liveness and metrics, mounts the application's own HTTP routes
// behind their role checks, and runs it all with a graceful drain.
//
// The HTTP stack, outermost first:
//
//	security headers, correlation id, recover, client IP, request info (for
//	the audit trail), access log, metrics, route match, authentication
//	(deferred refusals), HTTP audit, rate limit, trusted hosts, body limit,
//	authentication refusals, routes
//
// Routes:
//
//	GET  /web                  WebSocket endpoint (router/ws)
//	POST /api/pkg/{pkg_id}     HTTP package bridge (router.Bridge)
//	GET  /api/packages         the caller's packages (router.CatalogueHandler)
//	GET  /health               dependencies (middleware/health)
//	GET  /live                 liveness
//	GET  /metrics              Prometheus metrics
//	POST /auth/login, /auth/refresh   Config.Login, when set
//	Config.Routes              the application's own routes
//
// /health, /live, /metrics and /web are the public paths: one list feeds
// the authentication exclusions, the HTTP rate limit exclusions and the
// audit skip (the WebSocket endpoint authenticates, limits and audits its
// own connections).
//
// Nothing is silently missing: New refuses a Config without an
// Authenticator, without a Limiter or without an audit Logger, unless the
// missing part is turned off on purpose with Config.Insecure, which New
// logs as a warning. Every part can be replaced: the authenticator, the
// limiter, the audit logger, the WebSocket configuration, the registry,
// the listener.
//
// Run serves until its context ends, then shuts down in a documented
// order: the WebSocket drain beside http.Server.Shutdown (bounded by
// ShutdownTimeout), then the audit flush (with its own budget,
// AuditFlushTimeout), then the background jobs (Config.Jobs) are stopped.
package server
