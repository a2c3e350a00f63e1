package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
	"github.com/pkgroute/pkgroute/middleware"
	"github.com/pkgroute/pkgroute/middleware/health"
	"github.com/pkgroute/pkgroute/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// devUsers are the built-in users of the development issuer.
var devUsers = []authtest.User{
	{Username: "admin", Password: "admin", Roles: []string{"get-authors", "create-author", "update-author", "delete-author", "admin"}},
	{Username: "writer", Password: "writer", Roles: []string{"get-authors", "create-author", "update-author"}},
	{Username: "reader", Password: "reader", Roles: []string{"get-authors"}},
}

const (
	devRealm    = "dev"
	devClientID = "authorsvc"
)

// run is the whole service: it returns when ctx is cancelled (after a
// graceful shutdown) or when start-up fails.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("authorsvc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listRoutes := fs.Bool("routes", false, "print the package table and the HTTP routes, then exit")
	if err := fs.Parse(args[1:]); err != nil {
		return &configError{name: "flags", why: err.Error()}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	pkgs := router.New[PkgID](router.Config{Logger: log})
	registerPackages(pkgs)
	if err := pkgs.VerifyAll(Ping); err != nil {
		return err
	}
	if *listRoutes {
		printRoutes(stdout, pkgs)
		return nil
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()
	baseURL := "http://" + ln.Addr().String()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	kc := keycloak.Config{
		BaseURL: cfg.KeycloakBaseURL, Realm: cfg.KeycloakRealm, ClientID: cfg.KeycloakClientID,
		Leeway: cfg.AuthLeeway, RealmRoles: cfg.AuthRealmRoles, Logger: log, Registerer: reg,
	}
	if cfg.devIssuer {
		iss, err := authtest.New(authtest.Config{BaseURL: baseURL, Realm: devRealm, ClientID: devClientID, Users: devUsers})
		if err != nil {
			return fmt.Errorf("development issuer: %w", err)
		}
		log.Warn("no Keycloak configured: the development issuer signs tokens; never use it in production",
			"issuer", iss.IssuerURL(), "users", "admin/admin, writer/writer, reader/reader")
		mux.Handle("GET /dev/jwks", jwksHandler(iss))
		mux.Handle("/realms/", iss.Handler())
		kc.BaseURL, kc.Realm, kc.ClientID = baseURL, devRealm, devClientID
		// The verifier fetches the keys in-process: the listener is not
		// serving yet.
		kc.HTTPClient = &http.Client{Transport: handlerTransport{iss.Handler()}}
	}
	verifier, err := keycloak.NewVerifier(ctx, kc)
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	defer verifier.Close()

	mux.Handle("POST /api/pkg/{pkg_id}", router.Bridge(pkgs))
	mux.Handle("GET /api/packages", router.CatalogueHandler(pkgs))
	mux.Handle("GET /health", health.New(health.Config{Logger: log, Checks: []health.Check{
		{Name: "database", Func: func(context.Context) error { return nil }},
		{Name: "redis"},
		{Name: "websocket", Func: func(context.Context) error { return nil }, Fields: func() []health.Field {
			return []health.Field{{Key: "active_connections", Value: 0}}
		}},
	}}))
	mux.Handle("GET /metrics", middleware.MetricsHandler(reg))

	metrics, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: reg})
	if err != nil {
		return err
	}
	handler := middleware.Chain(
		middleware.SecurityHeaders(middleware.SecurityHeadersConfig{}),
		middleware.CorrelationID(middleware.CorrelationIDConfig{Logger: log}),
		middleware.Recover(middleware.RecoverConfig{}),
		middleware.ClientIP(middleware.ClientIPConfig{TrustedProxies: cfg.TrustedProxies}),
		middleware.AccessLog(middleware.AccessLogConfig{Logger: log}),
		metrics.Middleware,
		middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: cfg.AllowedHosts}),
		middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: cfg.MaxRequestBodySize}),
		auth.Middleware(auth.Config{Authenticator: verifier, Optional: true, Logger: log}),
	)(middleware.Routes(mux))

	srv := middleware.NewServer(cfg.HTTPAddr, handler, middleware.ServerConfig{})
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	printWelcome(stdout, cfg, baseURL)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := middleware.Shutdown(sctx, srv); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch cfg.LogLevel {
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// jwksHandler serves the development issuer's key set.
func jwksHandler(iss *authtest.Issuer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(iss.JWKS())
	})
}

// handlerTransport answers HTTP requests with an in-process handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := &responseRecorder{header: http.Header{}, status: http.StatusOK}
	t.h.ServeHTTP(rec, req)
	return &http.Response{
		StatusCode: rec.status, Status: http.StatusText(rec.status), Header: rec.header,
		Body: io.NopCloser(strings.NewReader(rec.body.String())), Request: req,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: int64(rec.body.Len()),
	}, nil
}

type responseRecorder struct {
	header http.Header
	status int
	body   strings.Builder
	wrote  bool
}

func (r *responseRecorder) Header() http.Header { return r.header }
func (r *responseRecorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote = s, true
	}
}
func (r *responseRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

func printRoutes(w io.Writer, r *router.PackageRouter[PkgID]) {
	fmt.Fprintf(w, "%-7s %-24s %-14s %-40s %-6s %s\n", "pkg_id", "name", "access", "roles", "schema", "paginated")
	for _, rt := range r.Routes() {
		schema := "no"
		if len(rt.Schema) > 0 {
			schema = "yes"
		}
		fmt.Fprintf(w, "%-7d %-24s %-14s %-40s %-6s %t\n", rt.ID, rt.Name, rt.Access, strings.Join(rt.Roles, ","), schema, rt.Paginated)
	}
	for _, p := range r.Pushes() {
		fmt.Fprintf(w, "%-7d %-24s %-14s %-40s %-6s push\n", p.ID, p.Name, p.Access, strings.Join(p.Roles, ","), "-")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "HTTP routes:")
	for _, route := range httpRoutes {
		fmt.Fprintf(w, "  %-28s %s\n", route.pattern, route.access)
	}
}

// httpRoutes documents the HTTP routes for -routes.
var httpRoutes = []struct{ pattern, access string }{
	{"POST /api/pkg/{pkg_id}", "as the package"},
	{"GET /api/packages", "anyone (lists what the caller may use)"},
	{"GET /health", "anyone"},
	{"GET /metrics", "anyone"},
	{"GET /dev/jwks", "anyone (development issuer only)"},
}

func printWelcome(w io.Writer, cfg *config, baseURL string) {
	fmt.Fprintf(w, "authorsvc listening on %s\n", baseURL)
	if cfg.devIssuer {
		fmt.Fprintf(w, `
Development issuer active (no Keycloak configured). Users: admin/admin, writer/writer, reader/reader.
Get a token:
  TOKEN=$(curl -s -X POST %[1]s/realms/%[2]s/protocol/openid-connect/token \
    -d grant_type=password -d client_id=%[3]s -d username=writer -d password=writer | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
Call PING over HTTP:
  curl -s -X POST %[1]s/api/pkg/10 -H "Authorization: Bearer $TOKEN" -d '{"data":{"hello":"world"}}'
`, baseURL, devRealm, devClientID)
	}
}
