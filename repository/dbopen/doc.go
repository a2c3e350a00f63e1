// Package dbopen opens a *bun.DB from a DSN with sensible pool settings, a
// start-up wait, and Prometheus metrics.
//
// Supported DSNs:
//
//	sqlite:/var/lib/app/app.db       SQLite file (pure-Go driver, no cgo)
//	sqlite::memory:                  private in-memory SQLite database
//	postgres://user@host:5432/db     PostgreSQL through pgx's database/sql driver
//	postgresql://...                 the same
//
// SQLite databases get WAL journaling with synchronous=NORMAL (files: a
// commit is one WAL append without fsync, and the database stays
// consistent; a power failure may lose the last commits), a checkpoint
// every 10,000 WAL pages (about 40 MB with 4 KiB pages, instead of SQLite's
// 1,000: a page written many times between checkpoints is copied back to
// the database once, which matters for write-heavy loads such as the
// audit trail), a busy timeout,
// foreign keys and immediate write transactions; a pragma the DSN sets
// itself (_pragma=synchronous(FULL)) replaces the default. They get a
// single connection by default, so
// writers never contend. With one connection, a query made outside an open
// transaction waits until that transaction ends: code running inside a
// transaction must use it (repositories do when given its context). PostgreSQL connections run bun's already
// formatted queries with the simple protocol (one round trip, no statement
// cache churn) unless the DSN sets default_query_exec_mode.
//
// Open waits for the database with exponential backoff, bounded by its
// context and Config.StartupTimeout. With a Registerer it exports
// db_query_duration_seconds{operation}, db_slow_queries_total{operation},
// db_pool_connections_in_use, db_pool_connections_idle and
// db_pool_wait_total; with a Logger it logs queries slower than
// Config.SlowQuery.
package dbopen
