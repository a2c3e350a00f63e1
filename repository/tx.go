package repository

import (
	"context"
	"database/sql"

	"github.com/uptrace/bun"
)

type txKey struct{}

type txValue struct {
	db *bun.DB
	tx bun.Tx
}

// Transactor runs functions inside transactions of one *bun.DB. It
// implements command.Transactor: the context given to the function carries
// the transaction, and every Repository (and IDB) built over the same
// *bun.DB uses it.
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
func (t *Transactor) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if v, ok := ctx.Value(txKey{}).(txValue); ok && v.db == t.db {
		return fn(ctx)
	}
	var fnErr error
	err := t.db.RunInTx(ctx, t.opts, func(ctx context.Context, tx bun.Tx) error {
		fnErr = fn(WithTx(ctx, t.db, tx))
		return fnErr
	})
	if err != nil && fnErr == nil {
		// BEGIN or COMMIT failed.
		return MapError("transaction", "", err)
	}
	return err
}

// WithTx returns a context that carries tx, a transaction of db, so that
// repositories over db run their queries in it.
func WithTx(ctx context.Context, db *bun.DB, tx bun.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, txValue{db: db, tx: tx})
}

// IDB returns the transaction that ctx carries for fallback when fallback is
// a *bun.DB and one was started by a Transactor (or WithTx), and fallback
// itself otherwise. Hand-written queries use it to take part in the
// surrounding transaction.
func IDB(ctx context.Context, fallback bun.IDB) bun.IDB {
	if db, ok := fallback.(*bun.DB); ok {
		if v, ok := ctx.Value(txKey{}).(txValue); ok && v.db == db {
			return v.tx
		}
	}
	return fallback
}
