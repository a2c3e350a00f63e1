package auditbun

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// DefaultTable is the table of a Sink whose Config names none.
const DefaultTable = "user_actions"

// ChainHeadSuffix is appended to the entries table's name to name the
// table holding the chain head.
const ChainHeadSuffix = "_chain_head"

// Errors of Sink.
var (
	// ErrNotFound is returned by Get for an unknown id.
	ErrNotFound = errkind.New(errkind.NotFound, "audit entry not found")
	// ErrInvalidFilter is returned by Query for out-of-range paging.
	ErrInvalidFilter = errkind.New(errkind.InvalidData, "invalid audit filter")
)

// Config configures a Sink. The zero value means the defaults.
type Config struct {
	// Table is the table name: a lower-case letter or underscore, then
	// lower-case letters, digits and underscores (names are used unquoted
	// in DDL, where PostgreSQL folds them to lower case), at most 52
	// characters in all (so that the chain head table, Table +
	// ChainHeadSuffix, fits PostgreSQL's 63). Default DefaultTable.
	Table string
}

// Sink stores audit entries in a table of PostgreSQL or SQLite through bun,
// answers queries (Query, Get), deletes old entries (Prune) and verifies
// the hash chain (Verify). It implements audit.Sink, audit.ChainSink and
// audit.Pruner, and is safe for concurrent use.
//
// Writes are idempotent: an entry whose id is stored is skipped. On
// PostgreSQL a batch is copied with COPY (pgx's CopyFrom) when the sink was
// given a *bun.DB over pgx's database/sql driver; on SQLite it is written
// by prepared multi-row INSERT statements. Inside a caller's transaction (a
// bun.Tx or bun.Conn), and on PostgreSQL through another driver, a batch is
// one multi-row INSERT ... ON CONFLICT (id) DO NOTHING.
//
// The head of the hash chain (the sequence number and hash of the last
// chained entry) is kept in a one-row table of its own, Table +
// ChainHeadSuffix, updated in the same transaction as each chained batch,
// and only forward: a batch written again never moves it back. Deleting
// the last entries therefore does not move the head: Verify reports them
// missing, and a new Logger continues the chain from the head, not from
// the last remaining entry.
type Sink struct {
	db    bun.IDB
	sqldb *sql.DB // set when db is a *bun.DB: fast paths
	table string
	head  string // the chain head table
	pg    bool

	// PostgreSQL: COPY's statement, and whether the table's column types
	// are those of CreateTable (rawCopyUnknown, rawCopyYes, rawCopyNo).
	copySQL string
	rawCopy atomic.Int32

	// SQLite's prepared INSERT statements, by number of rows.
	mu    sync.Mutex
	stmts map[int]*sql.Stmt
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,51}$`)

// New returns a sink writing to db. It panics on an invalid table name or
// a dialect other than PostgreSQL and SQLite.
func New(db bun.IDB, cfg Config) *Sink {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if !identRE.MatchString(cfg.Table) {
		panic(fmt.Sprintf("auditbun: invalid table name %q", cfg.Table))
	}
	s := &Sink{db: db, table: cfg.Table, head: cfg.Table + ChainHeadSuffix}
	switch db.Dialect().Name() {
	case dialect.PG:
		s.pg = true
	case dialect.SQLite:
	default:
		panic(fmt.Sprintf("auditbun: unsupported dialect %s", db.Dialect().Name()))
	}
	s.copySQL = `COPY "` + s.table + `" (` + insertColumns + `) FROM STDIN BINARY`
	if bdb, ok := db.(*bun.DB); ok {
		s.sqldb = bdb.DB
	}
	return s
}

// Table returns the name of the entries table.
func (s *Sink) Table() string { return s.table }

// Close releases the statements the sink prepared (on SQLite), after the
// last write: a write in flight may fail. A later write prepares them
// again. Closing the database instead is harmless.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for n, st := range s.stmts {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
		delete(s.stmts, n)
	}
	return first
}

var (
	_ audit.Sink      = (*Sink)(nil)
	_ audit.ChainSink = (*Sink)(nil)
	_ audit.Pruner    = (*Sink)(nil)
)

// Write stores entries; ids already stored are skipped. When the entries
// are chained, the chain head is set to the last of them in the same
// transaction, unless the stored head is already further.
func (s *Sink) Write(ctx context.Context, entries []audit.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		// Before a caller's connection is touched: database/sql closes
		// one whose query is canceled.
		return fmt.Errorf("auditbun: write %d entries: %w", len(entries), err)
	}
	var err error
	switch {
	case s.sqldb == nil:
		err = s.writeInsert(ctx, entries)
	case s.pg:
		err = s.writePG(ctx, entries)
	default:
		err = s.writeSQLite(ctx, entries)
	}
	if err != nil {
		return fmt.Errorf("auditbun: write %d entries: %w", len(entries), err)
	}
	return nil
}

// chainLast returns the chained entry with the highest sequence number, or
// nil when no entry is chained.
func chainLast(entries []audit.Entry) *audit.Entry {
	var last *audit.Entry
	for i := range entries {
		if e := &entries[i]; e.Hash != "" && (last == nil || e.Seq > last.Seq) {
			last = e
		}
	}
	return last
}
