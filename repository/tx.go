package repository

import (
	"context"
	"database/sql"
	"reflect"
	"sync"

	"github.com/uptrace/bun"
)

type txKey struct{}

type txValue struct {
	db *bun.DB
	tx bun.Tx
	// written collects the count caches to invalidate after the commit;
	// nil when the caller of WithTx commits.
	written *writtenTables
}

// writtenTables records the tables written in a transaction, with the
// count cache of each repository that wrote them.
type writtenTables struct {
	mu      sync.Mutex
	entries []writtenTable
}

type writtenTable struct {
	cache CountCache
	table string
}

func (w *writtenTables) add(cache CountCache, table string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.entries {
		if e.table == table && sameCache(e.cache, cache) {
			return
		}
	}
	w.entries = append(w.entries, writtenTable{cache: cache, table: table})
}

// invalidate forgets the cached totals of every table written.
func (w *writtenTables) invalidate(ctx context.Context) {
	w.mu.Lock()
	entries := w.entries
	w.entries = nil
	w.mu.Unlock()
	for _, e := range entries {
		e.cache.Invalidate(ctx, e.table)
	}
}

// sameCache reports whether a and b are the same cache, without panicking
// on caches whose type is not comparable (those are never deduplicated).
func sameCache(a, b CountCache) bool {
	t := reflect.TypeOf(a)
	return t == reflect.TypeOf(b) && t.Comparable() && a == b
}

// Transactor runs functions inside transactions of one *bun.DB. It
// implements command.Transactor: the context given to the function carries
// the transaction, and every Repository (and IDB) built over the same
// *bun.DB uses it. Count caches of the tables that repositories wrote in
// the transaction are invalidated once it has committed.
type Transactor struct {
	db   *bun.DB
	opts *sql.TxOptions
}

// NewTransactor returns a Transactor over db; opts may be nil (the driver's
// defaults).
func NewTransactor(db *bun.DB, opts *sql.TxOptions) *Transactor {
	if db == nil {
		panic("repository: NewTransactor needs a *bun.DB")
	}
	return &Transactor{db: db, opts: opts}
}

// InTx runs fn inside a transaction: committed when fn returns nil, rolled
// back when it returns an error or panics. When ctx already carries a
// transaction of the same database, fn joins it instead of opening another.
// After the commit, the count caches of the tables written in the
// transaction are invalidated.
func (t *Transactor) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if v, ok := ctx.Value(txKey{}).(txValue); ok && v.db == t.db {
		return fn(ctx)
	}
	written := new(writtenTables)
	var fnErr error
	err := t.db.RunInTx(ctx, t.opts, func(ctx context.Context, tx bun.Tx) error {
		fnErr = fn(context.WithValue(ctx, txKey{}, txValue{db: t.db, tx: tx, written: written}))
		return fnErr
	})
	if fnErr != nil {
		return err
	}
	// Also when COMMIT failed: it may have taken effect all the same.
	written.invalidate(context.WithoutCancel(ctx))
	if err != nil {
		// BEGIN or COMMIT failed.
		return MapError("transaction", "", err)
	}
	return nil
}

// WithTx returns a context that carries tx, a transaction of db, so that
// repositories over db run their queries in it. The caller commits tx, so
// repositories invalidate their count caches when they write, before the
// commit: a total cached by a reader between that write and the commit
// may lag until it expires. Transactor invalidates after the commit.
func WithTx(ctx context.Context, db *bun.DB, tx bun.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, txValue{db: db, tx: tx})
}

// IDB returns the transaction that ctx carries for fallback when fallback is
// a *bun.DB and one was started by a Transactor (or WithTx), and fallback
// itself otherwise. Hand-written queries use it to take part in the
// surrounding transaction.
func IDB(ctx context.Context, fallback bun.IDB) bun.IDB {
	if v, ok := txFor(ctx, fallback); ok {
		return v.tx
	}
	return fallback
}

// txFor returns the transaction that ctx carries for fallback, if any.
func txFor(ctx context.Context, fallback bun.IDB) (txValue, bool) {
	if db, ok := fallback.(*bun.DB); ok {
		if v, ok := ctx.Value(txKey{}).(txValue); ok && v.db == db {
			return v, true
		}
	}
	return txValue{}, false
}

// isTx reports whether db is a transaction.
func isTx(db bun.IDB) bool {
	switch db.(type) {
	case bun.Tx, *bun.Tx:
		return true
	}
	return false
}
