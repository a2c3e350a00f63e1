package dbopen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/schema"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver
)

// Config configures Open. The zero value means the documented defaults.
type Config struct {
	// MaxOpenConns bounds open connections. Default 20 for PostgreSQL and 1
	// for SQLite (one writer; an in-memory database is always 1, since
	// each connection would see its own database).
	MaxOpenConns int
	// MaxIdleConns bounds idle connections. Default MaxOpenConns.
	MaxIdleConns int
	// ConnMaxLifetime closes connections older than this. Default 30 min
	// for PostgreSQL, unlimited for SQLite.
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes connections idle for longer. Default 5 min for
	// PostgreSQL, unlimited for SQLite.
	ConnMaxIdleTime time.Duration
	// BusyTimeout is how long a SQLite statement waits for a lock. Default 5 s.
	BusyTimeout time.Duration
	// StartupTimeout bounds how long Open waits for the database to
	// answer. Default 30 s. Open's context bounds it too.
	StartupTimeout time.Duration
	// SlowQuery is the duration above which a query counts as slow (logged
	// and counted). Default 200 ms.
	SlowQuery time.Duration
	// Logger receives the start-up retries and slow queries; nil discards.
	Logger *slog.Logger
	// Registerer receives the metrics; nil means none.
	Registerer prometheus.Registerer
}

// Open opens the database named by dsn, waits until it answers and returns
// it as a *bun.DB. The caller closes it.
func Open(ctx context.Context, dsn string, cfg Config) (*bun.DB, error) {
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if cfg.StartupTimeout <= 0 {
		cfg.StartupTimeout = 30 * time.Second
	}
	if cfg.SlowQuery <= 0 {
		cfg.SlowQuery = 200 * time.Millisecond
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	var (
		sqldb *sql.DB
		dia   schema.Dialect
		err   error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		sqldb, err = openSQLite(strings.TrimPrefix(dsn, "sqlite:"), &cfg)
		dia = sqlitedialect.New()
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		sqldb, err = openPostgres(dsn, &cfg)
		dia = pgdialect.New()
	default:
		return nil, fmt.Errorf("dbopen: unsupported DSN scheme (want sqlite: or postgres://)")
	}
	if err != nil {
		return nil, err
	}
	sqldb.SetMaxOpenConns(cfg.MaxOpenConns)
	sqldb.SetMaxIdleConns(cfg.MaxIdleConns)
	sqldb.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	sqldb.SetConnMaxIdleTime(cfg.ConnMaxIdleTime)

	if err := waitReady(ctx, sqldb, cfg.StartupTimeout, logger); err != nil {
		_ = sqldb.Close()
		return nil, err
	}

	db := bun.NewDB(sqldb, dia)
	if cfg.Registerer != nil || cfg.Logger != nil {
		hook, err := newQueryHook(cfg.Registerer, logger, cfg.SlowQuery)
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		db = db.WithQueryHook(hook)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(newPoolCollector(sqldb)); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("dbopen: register pool metrics: %w", err)
		}
	}
	return db, nil
}

func openSQLite(rest string, cfg *Config) (*sql.DB, error) {
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return nil, errors.New("dbopen: sqlite DSN needs a path (or :memory:)")
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("dbopen: sqlite DSN parameters: %w", err)
	}
	memory := path == ":memory:" || params.Get("mode") == "memory"
	pragmas := map[string]bool{}
	for _, p := range params["_pragma"] {
		name, _, _ := strings.Cut(p, "(")
		pragmas[strings.ToLower(strings.TrimSpace(name))] = true
	}
	addPragma := func(name, value string) {
		if !pragmas[name] {
			params.Add("_pragma", name+"("+value+")")
		}
	}
	addPragma("busy_timeout", fmt.Sprint(cfg.BusyTimeout.Milliseconds()))
	addPragma("foreign_keys", "1")
	if !memory {
		addPragma("journal_mode", "WAL")
		addPragma("synchronous", "NORMAL")
		addPragma("wal_autocheckpoint", "10000")
	}
	if params.Get("_txlock") == "" {
		params.Set("_txlock", "immediate")
	}
	name := path
	if !memory && !strings.HasPrefix(path, "file:") {
		name = "file:" + path
	}
	sqldb, err := sql.Open("sqlite", name+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("dbopen: open sqlite: %w", err)
	}
	if memory || cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = 1
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = cfg.MaxOpenConns
	}
	if memory {
		// The database lives as long as its one connection.
		cfg.ConnMaxLifetime, cfg.ConnMaxIdleTime = 0, 0
	}
	return sqldb, nil
}

func openPostgres(dsn string, cfg *Config) (*sql.DB, error) {
	conf, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, errors.New("dbopen: invalid postgres DSN")
	}
	if !strings.Contains(dsn, "default_query_exec_mode") {
		// bun sends queries with their values already in the text.
		conf.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = 20
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = cfg.MaxOpenConns
	}
	if cfg.ConnMaxLifetime <= 0 {
		cfg.ConnMaxLifetime = 30 * time.Minute
	}
	if cfg.ConnMaxIdleTime <= 0 {
		cfg.ConnMaxIdleTime = 5 * time.Minute
	}
	return stdlib.OpenDB(*conf), nil
}

// waitReady pings db until it answers, backing off exponentially from
// 100 ms to 5 s, for at most timeout and while ctx lasts.
func waitReady(ctx context.Context, db *sql.DB, timeout time.Duration, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := pingOnce(ctx, db)
		if err == nil {
			return nil
		}
		logger.Warn("database not ready", "attempt", attempt, "retry_in", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("dbopen: database not ready after %d attempts: %w", attempt, err)
		case <-t.C:
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func pingOnce(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}
