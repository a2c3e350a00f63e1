package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/audit/journal"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
	"github.com/pkgroute/pkgroute/command"
	"github.com/pkgroute/pkgroute/middleware"
	"github.com/pkgroute/pkgroute/middleware/health"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/ratelimit/redislimit"
	"github.com/pkgroute/pkgroute/rbac"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/dbmigrate"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/routermw"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wsredis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
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
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: authorsvc [-routes]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nEnvironment (all optional; README.md explains each):\n")
		for _, v := range configVars() {
			def := v.def
			if def == "" {
				def = "(empty)"
			}
			fmt.Fprintf(stderr, "  %-28s %s\n", v.name, def)
		}
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the usage is printed
		}
		return &configError{name: "flags", why: err.Error()}
	}
	if fs.NArg() > 0 {
		return &configError{name: "arguments", value: fs.Arg(0), why: "unexpected argument (configuration is read from the environment)"}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if *listRoutes {
		pkgs := router.New[PkgID](router.Config{Logger: log})
		registerPackages(pkgs, listingCommands())
		printRoutes(stdout, pkgs, append(authorRoutes(authorCommands{}, pkgs), auditRoutes(nil)...))
		return nil
	}

	// Listen first: nothing is created when the address cannot be had.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()
	if cfg.DebugAddr != "" {
		stop, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	baseURL := "http://" + ln.Addr().String()

	db, err := dbopen.Open(ctx, cfg.DatabaseURL, dbopen.Config{Logger: log, Registerer: reg})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	applied, err := dbmigrate.Migrate(ctx, db, migrationFiles(), dbmigrate.Config{Table: "authorsvc_migrations"})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if len(applied) > 0 {
		log.Info("migrations applied", "migrations", applied)
	}
	base, err := repository.New[Author](db, repository.Config{})
	if err != nil {
		return err
	}
	notifier := &pushNotifier{log: log}
	cmds := newAuthorCommands(AuthorRepository{base}, repository.NewTransactor(db, nil), notifier, time.Now)

	var background []func(context.Context) error
	var auditLog *audit.Logger
	auditSink := auditbun.New(db, auditbun.Config{})
	// The table exists even with the audit log off: /audit-logs still
	// answers (with the entries of earlier runs).
	if err := auditSink.CreateTable(ctx); err != nil {
		return fmt.Errorf("audit table: %w", err)
	}
	if cfg.AuditEnabled {
		acfg := audit.Config{
			Sink:         auditSink,
			QueueSize:    cfg.AuditQueueMaxSize,
			BatchSize:    cfg.AuditBatchSize,
			BatchTimeout: cfg.AuditBatchTimeout,
			WriteAhead:   cfg.AuditWriteAhead,
			Logger:       log,
			Registerer:   reg,
		}
		if cfg.AuditQueueTimeout > 0 {
			acfg.Policy, acfg.WaitTimeout = audit.Wait, cfg.AuditQueueTimeout
		}
		if cfg.AuditJournalDir != "" {
			j, err := journal.Open(ctx, cfg.AuditJournalDir, journal.Config{
				Fsync:    cfg.AuditJournalFsync,
				MaxBytes: cfg.AuditJournalMax,
				Head:     auditSink.ChainHead,
				Logger:   log,
			})
			if err != nil {
				return fmt.Errorf("audit journal: %w", err)
			}
			if n := j.Len(); n > 0 {
				log.Info("audit journal replays entries of an earlier run", "entries", n)
			}
			acfg.Buffer = j
		}
		auditLog = audit.New(acfg)
		// Closed after the drain below; this only releases the journal
		// when start-up fails.
		defer func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.AuditFlushTimeout)
			defer cancel()
			_ = auditLog.Close(fctx)
		}()
		background = append(background, auditLog.Run, audit.Retention{
			Pruner:   auditSink,
			MaxAge:   time.Duration(cfg.AuditRetentionDays) * 24 * time.Hour,
			Interval: 24 * time.Hour,
			Logger:   log,
		}.Run)
	}

	pkgs := router.New[PkgID](router.Config{Logger: log})
	if auditLog != nil {
		pkgs.Use(routermw.Audit[PkgID](auditLog, routermw.AuditConfig{}))
	}
	pkgs.Use(routermw.Metrics[PkgID](reg))
	registerPackages(pkgs, cmds)
	if err := pkgs.VerifyAll(allPackages...); err != nil {
		return err
	}

	mux := http.NewServeMux()
	kc := keycloak.Config{
		BaseURL: cfg.KeycloakBaseURL, Realm: cfg.KeycloakRealm, ClientID: cfg.KeycloakClientID,
		Leeway: leeway(cfg.AuthLeeway), RealmRoles: cfg.AuthRealmRoles, Logger: log, Registerer: reg,
	}
	login := keycloak.ClientConfig{
		BaseURL: cfg.KeycloakBaseURL, Realm: cfg.KeycloakRealm, ClientID: cfg.KeycloakClientID,
		ClientSecret: cfg.KeycloakSecret, Logger: log, Registerer: reg,
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
		// The verifier and the login client reach the issuer in-process:
		// the listener is not serving yet when the keys are first fetched.
		inProcess := &http.Client{Transport: handlerTransport{iss.Handler()}}
		kc.BaseURL, kc.Realm, kc.ClientID, kc.HTTPClient = baseURL, devRealm, devClientID, inProcess
		login.BaseURL, login.Realm, login.ClientID, login.HTTPClient = baseURL, devRealm, devClientID, inProcess
	}
	verifier, err := keycloak.NewVerifier(ctx, kc)
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	defer verifier.Close()
	background = append(background, verifier.Run) // periodic key set refresh
	loginClient, err := keycloak.NewClient(login)
	if err != nil {
		return fmt.Errorf("login client: %w", err)
	}
	defer loginClient.Close()

	var rdb *redis.Client
	if cfg.RedisURL != "" {
		if rdb, err = redislimit.NewClient(cfg.RedisURL, redislimit.DefaultTimeout); err != nil {
			return &configError{name: "REDIS_URL", value: redact(cfg.RedisURL), why: err.Error()}
		}
		defer rdb.Close()
		// go-redis reports pool trouble through one logger per process,
		// plain text on stderr unless replaced.
		redis.SetLogger(redisLogger{log})
	}
	failMode := ratelimit.FailClosed
	if cfg.RateLimitFailOpen {
		failMode = ratelimit.FailOpen
	}
	// The HTTP and WebSocket message limiters are told apart by the
	// limiter label of rate_limit_decisions_total.
	var limiter ratelimit.Limiter = ratelimit.NewMemory(ratelimit.MemoryConfig{Name: "http", Registerer: reg})
	if rdb != nil {
		limiter = redislimit.New(rdb, redislimit.Config{Name: "http", Prefix: cfg.RedisKeyPrefix + "ratelimit:", FailMode: failMode, Logger: log, Registerer: reg})
	}
	rateLimit := func(h http.Handler) http.Handler { return h }
	if cfg.RateLimitEnabled {
		rateLimit = ratelimit.Middleware(ratelimit.Config{
			Limiter: limiter,
			Rate:    ratelimit.Rate{Limit: cfg.RateLimitPerMinute, Window: time.Minute, Burst: cfg.RateLimitBurst},
			Key: func(r *http.Request) string {
				if p := auth.FromContext(r.Context()); p != nil {
					return p.ID
				}
				return ""
			},
			ClientIP:   ratelimit.ClientIP(cfg.TrustedProxies),
			Exclude:    []string{"/health", "/live", "/metrics", "/web"},
			Logger:     log,
			Registerer: reg,
		})
	}

	wsCfg := ws.Config{
		Authenticator:         verifier,
		AllowedOrigins:        cfg.AllowedWSOrigins,
		AuthTimeout:           cfg.WSAuthTimeout,
		ExpiryLeeway:          leeway(cfg.AuthLeeway),
		MaxConnsPerUser:       offIfZero(cfg.WSMaxConnsPerUser),
		MessageRate:           ratelimit.Rate{Limit: offIfZero(cfg.WSMessageRate), Window: time.Minute},
		MaxConsecutiveLimited: offIfZero(cfg.WSAbuseCloseAfter),
		MaxMessageSize:        cfg.WSMaxMessageSize,
		OnEvent:               wsAuditEvents(auditLog, pkgs, routermw.CountRefused(reg)),
		Logger:                log,
		Registerer:            reg,
	}
	if rdb != nil {
		wsCfg.Limiter = redislimit.New(rdb, redislimit.Config{Name: "ws", Prefix: cfg.RedisKeyPrefix + "wsrate:", FailMode: failMode, Logger: log, Registerer: reg})
		conns := redislimit.NewConnections(rdb, redislimit.ConnectionsConfig{Prefix: cfg.RedisKeyPrefix + "wsconns:", Logger: log, Registerer: reg})
		wsCfg.Connections = conns
		background = append(background, conns.Run)
		wsCfg.Broker = wsredis.New(wsredis.Config{Client: rdb, Channel: cfg.RedisKeyPrefix + "ws:push", Logger: log})
	}
	endpoint := ws.New(pkgs, wsCfg)
	notifier.endpoint = endpoint
	mux.Handle("GET /web", endpoint)

	mount(mux, authorRoutes(cmds, pkgs))
	mount(mux, auditRoutes(auditSink))
	mux.Handle("POST /auth/login", loginHTTP(loginClient))
	mux.Handle("POST /auth/refresh", refreshHTTP(loginClient))
	mux.Handle("POST /api/pkg/{pkg_id}", router.Bridge(pkgs))
	mux.Handle("GET /api/packages", router.CatalogueHandler(pkgs))
	mux.Handle("GET /health", health.New(health.Config{Logger: log, Checks: []health.Check{
		{Name: "database", Func: db.PingContext},
		{Name: "redis", Func: redisCheck(rdb)},
		{Name: "websocket", Func: func(context.Context) error { return nil }, Fields: func() []health.Field {
			return []health.Field{{Key: "active_connections", Value: endpoint.ActiveConnections()}}
		}},
	}}))
	mux.Handle("GET /live", health.Live()) // liveness: the process answers, whatever its dependencies
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
		requestInfo,
		middleware.AccessLog(middleware.AccessLogConfig{Logger: log}),
		metrics.Middleware,
		middleware.Match(mux), // requests refused below are counted under their route
		// The WebSocket endpoint authenticates its own upgrades. Refused
		// tokens are answered after the rate limit (keyed by client address
		// for them), so that guessing tokens is limited too, and every
		// answer from here on carries the rate limit headers.
		auth.Middleware(auth.Config{Authenticator: verifier, Optional: true, Defer: true, Logger: log, Exclude: authExclude}),
		auditHTTP(auditLog, pkgs), // before the rate limit, so that its 429s are audited
		rateLimit,
		middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: cfg.AllowedHosts}),
		middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: cfg.MaxRequestBodySize}),
		auth.Refuse,
	)(middleware.Routes(mux))

	srv := middleware.NewServer(cfg.HTTPAddr, handler, middleware.ServerConfig{})
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	printWelcome(stdout, cfg, baseURL)

	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	for _, f := range background {
		bg.Go(func() {
			if err := f(bgCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("background job stopped", "err", err)
			}
		})
	}
	defer func() {
		stopBackground()
		bg.Wait()
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(middleware.Listener(ln, middleware.SecurityHeadersConfig{})) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := middleware.Shutdown(sctx, srv, endpoint.Shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if auditLog != nil {
		// The audit flush has its own budget, after the drain: every entry
		// of the drained requests is written, or stays in the journal, or
		// is counted as dropped in the logger's closing line.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.AuditFlushTimeout)
		err := auditLog.Close(fctx)
		cancel()
		if err != nil && cfg.AuditJournalDir == "" {
			return fmt.Errorf("flush audit log: %w", err)
		}
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

// redisLogger passes go-redis' own reports to the app's logger.
type redisLogger struct{ log *slog.Logger }

// Printf logs one go-redis report at warn level.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", slog.String("detail", fmt.Sprintf(format, v...)))
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

func printRoutes(w io.Writer, r *router.PackageRouter[PkgID], routes []httpRoute) {
	fmt.Fprintf(w, "%-7s %-24s %-14s %-40s %-6s %s\n", "pkg_id", "name", "access", "roles", "schema", "paginated")
	for _, rt := range r.Routes() {
		schema := "no"
		if len(rt.Schema) > 0 {
			schema = "yes"
		}
		fmt.Fprintf(w, "%-7d %-24s %-14s %-40s %-6s %t\n", rt.ID, rt.Name, rt.Access, strings.Join(rt.Roles, ","), schema, rt.Paginated)
	}
	for _, p := range r.Pushes() {
		schema := "no"
		if p.Schema != nil {
			schema = "yes"
		}
		fmt.Fprintf(w, "%-7d %-24s %-14s %-40s %-6s push\n", p.ID, p.Name, p.Access, strings.Join(p.Roles, ","), schema)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Permissions (packages, pushes and HTTP routes):")
	rules := r.Permissions()
	for _, route := range routes {
		rules = append(rules, rbac.Rule{Transport: "http", Name: route.pattern, Access: rbac.RolesRequired, Roles: route.roles})
	}
	for _, route := range otherRoutes {
		rules = append(rules, rbac.Rule{Transport: "http", Name: route.pattern, Access: route.access})
	}
	_, _ = rbac.NewTable(rules...).WriteTo(w)
}

// otherRoutes documents the service's other HTTP routes for -routes. The
// package bridge answers as each package's own access says.
var otherRoutes = []struct {
	pattern string
	access  rbac.Access
}{
	{"POST /auth/login", rbac.Public},
	{"POST /auth/refresh", rbac.Public},
	{"POST /api/pkg/{pkg_id}", rbac.Public},
	{"GET /api/packages", rbac.Public},
	{"GET /health", rbac.Public},
	{"GET /live", rbac.Public},
	{"GET /metrics", rbac.Public},
	{"GET /web", rbac.Authenticated},
	{"GET /dev/jwks", rbac.Public},
}

func printWelcome(w io.Writer, cfg *config, baseURL string) {
	wsURL := "ws" + strings.TrimPrefix(baseURL, "http") + "/web"
	fmt.Fprintf(w, "authorsvc listening on %s (WebSocket %s)\n", baseURL, wsURL)
	user, password := "writer", "writer"
	if cfg.devIssuer {
		fmt.Fprintln(w, "\nDevelopment issuer active (no Keycloak configured). Users: admin/admin, writer/writer, reader/reader.")
	} else {
		user, password = "<user>", "<password>" // a user of the Keycloak realm
	}
	fmt.Fprintf(w, `
Get a token:
  TOKEN=$(curl -s -X POST %[1]s/auth/login -d '{"username":"%[3]s","password":"%[4]s"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
Call PING over HTTP:
  curl -s -X POST %[1]s/api/pkg/10 -H "Authorization: Bearer $TOKEN" -d '{"data":{"hello":"world"}}'
Or over WebSocket:
  npx wscat -c %[2]s -H "Authorization: Bearer $TOKEN"
  > {"pkg_id":10,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"hello":"world"}}
`, baseURL, wsURL, user, password)
}

//go:embed migrations/*.sql
var migrations embed.FS

func migrationFiles() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// redisCheck pings Redis; nil (not configured) reports "disabled".
func redisCheck(rdb *redis.Client) func(context.Context) error {
	if rdb == nil {
		return nil
	}
	return func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
}

// listingCommands are commands without a database, for listings: the
// registrations need them, nothing runs them.
func listingCommands() authorCommands {
	noTx := command.TransactorFunc(func(ctx context.Context, fn func(context.Context) error) error { return fn(ctx) })
	return newAuthorCommands(AuthorRepository{}, noTx, nopNotifier{}, time.Now)
}

// nopNotifier drops author events (route listings need no hub).
type nopNotifier struct{}

func (nopNotifier) AuthorCreated(context.Context, AuthorCreatedEvent) {}

// pushNotifier pushes AUTHOR_CREATED to every connection, on every instance,
// whose user may read authors.
type pushNotifier struct {
	log      *slog.Logger
	endpoint *ws.Endpoint[PkgID]
}

func (n *pushNotifier) AuthorCreated(ctx context.Context, a AuthorCreatedEvent) {
	if err := n.endpoint.PushToRole(context.WithoutCancel(ctx), roleGetAuthors, AuthorCreated, a); err != nil {
		n.log.WarnContext(ctx, "push AUTHOR_CREATED failed", "author_id", a.ID, "err", err)
	}
}

// authExclude are the paths the HTTP authentication middleware skips.
var authExclude = regexp.MustCompile(`^(/health|/live|/metrics|/web)$`)

// leeway maps AUTH_LEEWAY_SECONDS=0 (none) to the libraries' negative =
// none (their zero means the default).
func leeway(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// offIfZero maps the configuration's 0 = off to the library's negative =
// off.
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// loginHTTP serves POST /auth/login: {"username","password"} -> the
// identity provider's token response, unchanged.
func loginHTTP(c *keycloak.Client) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := decodeBody(r, &in); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		if in.Username == "" || in.Password == "" {
			middleware.WriteError(w, r, invalidField("", "username and password are required"))
			return
		}
		tokens, err := c.Login(r.Context(), in.Username, in.Password)
		writeTokens(w, r, tokens, err, "Invalid username or password")
	}
}

// refreshHTTP serves POST /auth/refresh: {"refresh_token"} -> a new token
// response.
func refreshHTTP(c *keycloak.Client) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := decodeBody(r, &in); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		if in.RefreshToken == "" {
			middleware.WriteError(w, r, invalidField("/refresh_token", "required property is missing"))
			return
		}
		tokens, err := c.Refresh(r.Context(), in.RefreshToken)
		writeTokens(w, r, tokens, err, "Invalid refresh token")
	}
}

// writeTokens answers a login or refresh: the token response, or the error;
// refused credentials are 401 with refused as message and, as every 401 of
// a request that sent no access token, "WWW-Authenticate: Bearer".
func writeTokens(w http.ResponseWriter, r *http.Request, tokens []byte, err error, refused string) {
	if errors.Is(err, auth.ErrInvalidCredentials) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		auth.WriteError(w, http.StatusUnauthorized, "authentication_failed", refused)
		return
	}
	if err != nil {
		middleware.WriteError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(tokens)
}
