package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/middleware"
	"github.com/pkgroute/pkgroute/middleware/health"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router/ws"
)

// Defaults of Config.
const (
	// DefaultAddr is the listen address.
	DefaultAddr = "127.0.0.1:8000"
	// DefaultRequestsPerMinute is the HTTP rate limit per user (or client
	// IP when anonymous).
	DefaultRequestsPerMinute = 60
	// DefaultMaxBodyBytes bounds request bodies.
	DefaultMaxBodyBytes = middleware.DefaultMaxBodyBytes
	// DefaultShutdownTimeout bounds the drain.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultAuditFlushTimeout bounds the audit flush after the drain.
	DefaultAuditFlushTimeout = 10 * time.Second
)

// Fixed paths of the assembled service.
const (
	PathWebSocket = "/web"
	PathBridge    = "/api/pkg/{pkg_id}"
	PathCatalogue = "/api/packages"
	PathHealth    = "/health"
	PathLive      = "/live"
	PathMetrics   = "/metrics"
	PathLogin     = "/auth/login"
	PathRefresh   = "/auth/refresh"
)

// PublicPaths are the paths that skip HTTP authentication, the HTTP rate
// limit and the HTTP audit: the probes, the metrics and the WebSocket
// endpoint (which authenticates, limits and audits its own connections).
func PublicPaths() []string {
	return []string{PathHealth, PathLive, PathMetrics, PathWebSocket}
}

// Config configures a Server. Its zero value is not enough: Authenticator
// is required, and so are Limiter and Audit unless Insecure turns them off.
// Every other zero field means the documented default.
type Config struct {
	// Addr is the listen address (default DefaultAddr), unless Listener is
	// set.
	Addr string
	// Listener, when set, is served instead of listening on Addr (a test
	// passes a loopback listener on port 0). Run closes it.
	Listener net.Listener

	// Authenticator verifies bearer tokens over both transports; required.
	// keycloak.NewVerifier in production, an authtest.Issuer in
	// development and tests.
	Authenticator auth.Authenticator
	// Login, when set, serves POST /auth/login and POST /auth/refresh
	// (authtest.Issuer.LoginHandler in development; a handler over
	// keycloak.Client in production).
	Login http.Handler

	// Limiter decides the HTTP rate limit (key: the principal's ID, or
	// the client IP when anonymous); required unless Insecure.NoRateLimit.
	// ratelimit.NewMemory for one instance, redislimit.New for several.
	Limiter ratelimit.Limiter
	// RateLimit is the HTTP rate (default DefaultRequestsPerMinute per
	// minute).
	RateLimit ratelimit.Rate

	// Audit records every package call (router middleware), every
	// authenticated HTTP request and the WebSocket connection lifecycle;
	// required unless Insecure.NoAudit. The Server runs it (its Run
	// method) and closes it after the drain: do neither yourself.
	Audit *audit.Logger
	// AuditFlushTimeout is the budget of the audit flush after the drain
	// (default DefaultAuditFlushTimeout).
	AuditFlushTimeout time.Duration

	// WebSocket configures the endpoint at /web. Its zero fields mean the
	// ws defaults; Authenticator, Logger and Registerer default to this
	// Config's, and OnEvent (when nil) audits the connection lifecycle.
	WebSocket ws.Config

	// AllowedHosts is the Host allow-list (middleware.TrustedHostsConfig);
	// empty allows every host.
	AllowedHosts []string
	// TrustedProxies are the proxies whose X-Forwarded-For is believed, for
	// the client IP of logs, audit entries and the rate limit.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// HTTP configures the http.Server's timeouts (middleware.NewServer's
	// defaults when zero). Its Logger defaults to Logger.
	HTTP middleware.ServerConfig

	// Routes are the application's own HTTP routes, mounted behind their
	// role checks.
	Routes []Route
	// Checks are extra dependency checks of /health (a database, Redis),
	// reported beside the WebSocket endpoint's.
	Checks []health.Check
	// Jobs run in the background from Run until after the audit flush (a
	// verifier's key refresh, connection lease renewal). A job returns
	// when its context ends.
	Jobs []func(ctx context.Context) error

	// ShutdownTimeout bounds the drain of HTTP requests and WebSocket
	// connections (default DefaultShutdownTimeout).
	ShutdownTimeout time.Duration

	// Logger receives the service's logs and the warnings of New; nil
	// discards.
	Logger *slog.Logger
	// Registry receives every metric and is served at /metrics; nil means
	// a new registry with the Go and process collectors.
	Registry *prometheus.Registry

	// Insecure turns parts of the standard stack off on purpose.
	Insecure Insecure
}

// Insecure lists the parts of the standard stack an application turns off
// on purpose (a prototype, a test). New logs a warning for each.
type Insecure struct {
	// NoRateLimit serves without the HTTP rate limit and without the
	// WebSocket message limits (the per-user connection cap stays).
	NoRateLimit bool
	// NoAudit serves without an audit trail.
	NoAudit bool
}

// Route is one of the application's own HTTP routes.
type Route struct {
	// Pattern is the http.ServeMux pattern, e.g. "GET /todos/{id}".
	Pattern string
	// Handler serves the route.
	Handler http.Handler
	// Roles are all required of the caller. Nil (with Public false) lets
	// any authenticated caller in.
	Roles []string
	// Public serves the route to anonymous callers too (still rate
	// limited and audited when authenticated).
	Public bool
}
