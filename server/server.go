package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/middleware"
	"github.com/pkgroute/pkgroute/middleware/health"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/rbac"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/routermw"
	"github.com/pkgroute/pkgroute/router/ws"
)

// Errors of New and Run.
var (
	// ErrConfig wraps every configuration mistake New reports.
	ErrConfig = errors.New("server: invalid configuration")
	// ErrRunning is returned by a second call of Run.
	ErrRunning = errors.New("server: Run called twice")
)

// Server is the assembled service of one package router. Build it with New
// and serve it with Run.
type Server[T router.ID] struct {
	cfg      Config
	log      *slog.Logger
	pkgs     *router.PackageRouter[T]
	endpoint *ws.Endpoint[T]
	handler  http.Handler
	reg      *prometheus.Registry
	routes   []rbac.Rule
	ran      atomic.Bool
}

// New assembles the service of r from cfg. It adds the audit (unless
// Insecure.NoAudit) and metrics middlewares to r, and checks cfg: a
// missing Authenticator, a missing Limiter or audit Logger that Insecure
// does not excuse, an invalid rate, origin or route pattern is an error
// wrapping ErrConfig. Nothing runs before Run, except a Broker of
// cfg.WebSocket, which ws.New starts (Run's drain stops it).
func New[T router.ID](r *router.PackageRouter[T], cfg Config) (*Server[T], error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil router", ErrConfig)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server[T]{cfg: cfg, log: cfg.Logger, pkgs: r, reg: cfg.Registry}
	if cfg.Insecure.NoRateLimit {
		s.log.Warn("server: the HTTP rate limit and the WebSocket message limits are off (Config.Insecure.NoRateLimit)")
	}
	if cfg.Insecure.NoAudit {
		s.log.Warn("server: the audit trail is off (Config.Insecure.NoAudit)")
	}

	if cfg.Audit != nil {
		r.Use(routermw.Audit[T](cfg.Audit, routermw.AuditConfig{}))
	}
	r.Use(routermw.Metrics[T](s.reg))

	wsCfg := cfg.WebSocket
	if wsCfg.Authenticator == nil {
		wsCfg.Authenticator = cfg.Authenticator
	}
	if wsCfg.Logger == nil {
		wsCfg.Logger = s.log
	}
	if wsCfg.Registerer == nil {
		wsCfg.Registerer = s.reg
	}
	if cfg.Insecure.NoRateLimit {
		wsCfg.MessageRate = ratelimit.Rate{Limit: -1}
		wsCfg.ConnMessageRate = ratelimit.Rate{Limit: -1}
	}
	if wsCfg.OnEvent == nil {
		wsCfg.OnEvent = wsEvents(cfg.Audit, r, routermw.CountRefused(s.reg))
	}

	mux := http.NewServeMux()
	var rules []rbac.Rule
	handle := func(pattern string, access rbac.Access, roles []string, h http.Handler) error {
		if err := mountSafely(mux, pattern, h); err != nil {
			return err
		}
		rules = append(rules, rbac.Rule{Transport: "http", Name: pattern, Access: access, Roles: roles})
		return nil
	}
	for _, rt := range cfg.Routes {
		h, access := rt.Handler, rbac.Public
		if h == nil {
			return nil, fmt.Errorf("%w: route %q has no handler", ErrConfig, rt.Pattern)
		}
		if !rt.Public {
			h, access = rbac.RequireRoles(rt.Roles...)(h), rbac.RolesRequired
			if len(rt.Roles) == 0 {
				access = rbac.Authenticated
			}
		}
		if err := handle(rt.Pattern, access, rt.Roles, h); err != nil {
			return nil, err
		}
	}
	if cfg.Login != nil {
		if err := handle("POST "+PathLogin, rbac.Public, nil, cfg.Login); err != nil {
			return nil, err
		}
		if err := handle("POST "+PathRefresh, rbac.Public, nil, cfg.Login); err != nil {
			return nil, err
		}
	}

	s.endpoint, err = newEndpoint(r, wsCfg)
	if err != nil {
		return nil, err
	}
	checks := append([]health.Check{{
		Name: "websocket", Func: func(context.Context) error { return nil },
		Fields: func() []health.Field {
			return []health.Field{{Key: "active_connections", Value: s.endpoint.ActiveConnections()}}
		},
	}}, cfg.Checks...)
	builtin := []struct {
		pattern string
		access  rbac.Access
		h       http.Handler
	}{
		{"GET " + PathWebSocket, rbac.Authenticated, s.endpoint},
		{"POST " + PathBridge, rbac.Public, router.Bridge(r)},
		{"GET " + PathCatalogue, rbac.Public, router.CatalogueHandler(r)},
		{"GET " + PathHealth, rbac.Public, health.New(health.Config{Logger: s.log, Checks: checks})},
		{"GET " + PathLive, rbac.Public, health.Live()},
		{"GET " + PathMetrics, rbac.Public, middleware.MetricsHandler(s.reg)},
	}
	for _, b := range builtin {
		if err := handle(b.pattern, b.access, nil, b.h); err != nil {
			_ = s.endpoint.Shutdown(context.Background()) // nothing is connected yet
			return nil, err
		}
	}
	s.routes = rules

	metrics, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: s.reg})
	if err != nil {
		_ = s.endpoint.Shutdown(context.Background())
		return nil, fmt.Errorf("%w: metrics: %v", ErrConfig, err)
	}
	public := PublicPaths()
	rateLimit := func(h http.Handler) http.Handler { return h }
	if cfg.Limiter != nil && !cfg.Insecure.NoRateLimit {
		rateLimit = ratelimit.Middleware(ratelimit.Config{
			Limiter: cfg.Limiter,
			Rate:    cfg.RateLimit,
			Key: func(r *http.Request) string {
				if p := auth.FromContext(r.Context()); p != nil {
					return p.ID
				}
				return ""
			},
			ClientIP:   ratelimit.ClientIP(cfg.TrustedProxies),
			Exclude:    public,
			Logger:     s.log,
			Registerer: s.reg,
		})
	}
	s.handler = middleware.Chain(
		middleware.SecurityHeaders(middleware.SecurityHeadersConfig{}),
		middleware.CorrelationID(middleware.CorrelationIDConfig{Logger: s.log}),
		middleware.Recover(middleware.RecoverConfig{}),
		middleware.ClientIP(middleware.ClientIPConfig{TrustedProxies: cfg.TrustedProxies}),
		requestInfo,
		middleware.AccessLog(middleware.AccessLogConfig{Logger: s.log}),
		metrics.Middleware,
		middleware.Match(mux), // requests refused below are counted under their route
		// The WebSocket endpoint authenticates its own upgrades. Refused
		// tokens are answered after the rate limit (keyed by client address
		// for them), so that guessing tokens is limited too.
		auth.Middleware(auth.Config{Authenticator: cfg.Authenticator, Optional: true, Defer: true, Logger: s.log, Exclude: exactPaths(public)}),
		auditHTTP(cfg.Audit, r, public), // before the rate limit, so that its 429s are audited
		rateLimit,
		middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: cfg.AllowedHosts}),
		middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: cfg.MaxBodyBytes}),
		auth.Refuse,
	)(middleware.Routes(mux))
	return s, nil
}

func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Authenticator == nil {
		return c, fmt.Errorf("%w: Authenticator is required (keycloak.NewVerifier, or an authtest.Issuer in development)", ErrConfig)
	}
	if c.Limiter == nil && !c.Insecure.NoRateLimit {
		return c, fmt.Errorf("%w: Limiter is required (ratelimit.NewMemory, redislimit.New), or Insecure.NoRateLimit", ErrConfig)
	}
	if c.Audit == nil && !c.Insecure.NoAudit {
		return c, fmt.Errorf("%w: Audit is required (audit.New), or Insecure.NoAudit", ErrConfig)
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.RateLimit == (ratelimit.Rate{}) {
		c.RateLimit = ratelimit.PerMinute(DefaultRequestsPerMinute)
	}
	if !c.Insecure.NoRateLimit {
		if err := c.RateLimit.Validate(); err != nil {
			return c, fmt.Errorf("%w: RateLimit: %v", ErrConfig, err)
		}
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.AuditFlushTimeout <= 0 {
		c.AuditFlushTimeout = DefaultAuditFlushTimeout
	}
	if c.HTTP.Logger == nil {
		c.HTTP.Logger = c.Logger
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
		c.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return c, nil
}

// newEndpoint is ws.New with its configuration panics returned as errors.
func newEndpoint[T router.ID](r *router.PackageRouter[T], cfg ws.Config) (e *ws.Endpoint[T], err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: WebSocket: %v", ErrConfig, p)
		}
	}()
	return ws.New(r, cfg), nil
}

// mountSafely is mux.Handle with its panics (a bad or conflicting pattern)
// returned as errors.
func mountSafely(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: route %q: %v", ErrConfig, pattern, p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// exactPaths matches exactly the given paths.
func exactPaths(paths []string) *regexp.Regexp {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^(` + strings.Join(q, "|") + `)$`)
}

// Handler returns the whole HTTP stack, for tests (httptest.NewServer) or
// an http.Server of the application's own. Run serves it too.
func (s *Server[T]) Handler() http.Handler { return s.handler }

// Endpoint returns the WebSocket endpoint, to push to connections,
// users, roles or everyone.
func (s *Server[T]) Endpoint() *ws.Endpoint[T] { return s.endpoint }

// Registry returns the registry served at /metrics.
func (s *Server[T]) Registry() *prometheus.Registry { return s.reg }

// Permissions returns the access rules of every package, push and HTTP
// route, from the tables the router and the mux are built from (for a
// -routes listing: rbac.NewTable(s.Permissions()...).WriteTo(w)).
func (s *Server[T]) Permissions() []rbac.Rule {
	return append(s.pkgs.Permissions(), s.routes...)
}

// Run serves until ctx ends, then shuts down: it stops accepting, drains
// the HTTP requests in flight and the WebSocket connections together
// (within ShutdownTimeout), flushes the audit logger (within
// AuditFlushTimeout), and stops the background jobs. It returns nil after
// a clean shutdown, or the error that stopped it (a listen or serve error,
// a drain that ran out of time, an audit flush that failed).
func (s *Server[T]) Run(ctx context.Context) error {
	if s.ran.Swap(true) {
		return ErrRunning
	}
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			_ = s.endpoint.Shutdown(context.WithoutCancel(ctx))
			return fmt.Errorf("server: listen on %s: %w", s.cfg.Addr, err)
		}
	}
	s.log.Info("server: listening", "addr", ln.Addr().String(), "websocket", PathWebSocket)

	bgCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	var jobs sync.WaitGroup
	defer func() {
		stopJobs()
		jobs.Wait()
	}()
	run := func(name string, f func(context.Context) error) {
		jobs.Go(func() {
			if err := f(bgCtx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("server: background job stopped", "job", name, "error", err)
			}
		})
	}
	if s.cfg.Audit != nil {
		run("audit", s.cfg.Audit.Run)
	}
	for i, f := range s.cfg.Jobs {
		run(fmt.Sprintf("jobs[%d]", i), f)
	}

	srv := middleware.NewServer(s.cfg.Addr, s.handler, s.cfg.HTTP)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(middleware.Listener(ln, middleware.SecurityHeadersConfig{})) }()
	var errs []error
	select {
	case err := <-serveErr:
		errs = append(errs, fmt.Errorf("server: serve: %w", err))
		_ = s.endpoint.Shutdown(context.WithoutCancel(ctx))
	case <-ctx.Done():
		s.log.Info("server: shutting down", "timeout", s.cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		if err := middleware.Shutdown(sctx, srv, s.endpoint.Shutdown); err != nil {
			errs = append(errs, fmt.Errorf("server: shutdown: %w", err))
		}
		cancel()
		if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("server: serve: %w", err))
		}
	}
	if s.cfg.Audit != nil {
		// The audit flush has its own budget, after the drain: every entry
		// of the drained requests is written, or stays in the journal, or
		// is counted as dropped in the logger's closing line.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AuditFlushTimeout)
		if err := s.cfg.Audit.Close(fctx); err != nil {
			errs = append(errs, fmt.Errorf("server: flush audit log: %w", err))
		}
		cancel()
	}
	if len(errs) == 0 {
		s.log.Info("server: stopped")
	}
	return errors.Join(errs...)
}
