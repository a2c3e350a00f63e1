package repository

import (
	"context"
	"fmt"
	"math"
	"reflect"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/repository/internal/cursor"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/schema"
)

// Config configures a Repository. The zero value is valid: no count cache
// and the built-in cursor key.
type Config struct {
	// CountCache caches the totals of offset pages; nil counts every time.
	CountCache CountCache
	// CursorKey signs pagination cursors. Empty uses a built-in key, which
	// refuses damaged cursors and cursors of other tables; a secret key
	// (shared by all instances of a service) also refuses forged ones.
	CursorKey []byte
}

// Repository gives the common operations on the table of the bun model T (a
// struct with exactly one primary key column). Its queries run on the
// bun.IDB it was built with, or, when that is a *bun.DB, on the transaction
// that the context carries for it (see Transactor and WithTx). It is safe
// for concurrent use.
//
// Typed repositories embed it and add their own queries, using DB, Table
// and MapError for hand-written ones.
type Repository[T any] struct {
	db      bun.IDB
	table   *schema.Table
	pk      *schema.Field
	pkExpr  bun.Safe
	dialect dialect.Name
	cache   CountCache
	cursor  cursor.Codec
}

// New returns a Repository for model T over db.
func New[T any](db bun.IDB, cfg Config) (*Repository[T], error) {
	if db == nil {
		return nil, fmt.Errorf("repository: nil bun.IDB")
	}
	typ := reflect.TypeFor[T]()
	if typ.Kind() != reflect.Struct {
		return nil, fmt.Errorf("repository: model %s is not a struct", typ)
	}
	table := db.Dialect().Tables().Get(typ)
	if len(table.PKs) != 1 {
		return nil, fmt.Errorf("repository: model %s must have exactly one primary key column, has %d", typ, len(table.PKs))
	}
	pk := table.PKs[0]
	key := cfg.CursorKey
	if len(key) == 0 {
		key = []byte(cursor.DefaultKey)
	}
	return &Repository[T]{
		db:      db,
		table:   table,
		pk:      pk,
		pkExpr:  bun.Safe(string(table.SQLAlias) + "." + string(pk.SQLName)),
		dialect: db.Dialect().Name(),
		cache:   cfg.CountCache,
		cursor:  cursor.Codec{Key: key, Table: table.Name},
	}, nil
}

// WithDB returns a copy of r that runs its queries on db, e.g. the bun.Tx
// of a RunInTx callback. As with WithTx, its writes invalidate the count
// cache at once, before the caller commits.
func (r *Repository[T]) WithDB(db bun.IDB) *Repository[T] {
	c := *r
	c.db = db
	return &c
}

// DB returns the handle that r's queries use in ctx: the transaction ctx
// carries for r's database, or r's own handle.
func (r *Repository[T]) DB(ctx context.Context) bun.IDB { return IDB(ctx, r.db) }

// Table returns the name of r's table.
func (r *Repository[T]) Table() string { return r.table.Name }

// Get returns the row whose primary key is id, or ErrNotFound.
func (r *Repository[T]) Get(ctx context.Context, id any) (*T, error) {
	item := new(T)
	err := r.DB(ctx).NewSelect().Model(item).Where("? = ?", r.pkExpr, id).Scan(ctx)
	if err != nil {
		return nil, MapError("get", r.table.Name, err)
	}
	return item, nil
}

// First returns the row with the smallest primary key that matches
// filters, or ErrNotFound.
func (r *Repository[T]) First(ctx context.Context, filters ...Filter) (*T, error) {
	item := new(T)
	q := r.DB(ctx).NewSelect().Model(item)
	if err := r.filter(q, filters); err != nil {
		return nil, fmt.Errorf("first %s: %w", r.table.Name, err)
	}
	if err := q.OrderExpr("? ASC", r.pkExpr).Limit(1).Scan(ctx); err != nil {
		return nil, MapError("first", r.table.Name, err)
	}
	return item, nil
}

// List returns every row that matches filters, ordered by primary key. The
// slice is empty, not nil, when nothing matches.
func (r *Repository[T]) List(ctx context.Context, filters ...Filter) ([]T, error) {
	items := make([]T, 0)
	q := r.DB(ctx).NewSelect().Model(&items)
	if err := r.filter(q, filters); err != nil {
		return nil, fmt.Errorf("list %s: %w", r.table.Name, err)
	}
	if err := q.OrderExpr("? ASC", r.pkExpr).Scan(ctx); err != nil {
		return nil, MapError("list", r.table.Name, err)
	}
	return items, nil
}

// Create inserts item and reads back the row as stored (generated key and
// defaults included). A unique violation is ErrConflict.
func (r *Repository[T]) Create(ctx context.Context, item *T) error {
	_, err := r.DB(ctx).NewInsert().Model(item).Returning("*").Exec(ctx)
	if err != nil {
		return MapError("create", r.table.Name, err)
	}
	r.written(ctx)
	return nil
}

// Update writes every column of item to the row with item's primary key.
// No such row is ErrNotFound; a unique violation is ErrConflict.
func (r *Repository[T]) Update(ctx context.Context, item *T) error {
	res, err := r.DB(ctx).NewUpdate().Model(item).WherePK().Exec(ctx)
	if err := r.checkAffected("update", res, err); err != nil {
		return err
	}
	r.written(ctx)
	return nil
}

// Delete removes the row whose primary key is id; no such row is
// ErrNotFound.
func (r *Repository[T]) Delete(ctx context.Context, id any) error {
	res, err := r.DB(ctx).NewDelete().Model((*T)(nil)).Where("? = ?", r.pkExpr, id).Exec(ctx)
	if err := r.checkAffected("delete", res, err); err != nil {
		return err
	}
	r.written(ctx)
	return nil
}

// Exists reports whether a row matches filters.
func (r *Repository[T]) Exists(ctx context.Context, filters ...Filter) (bool, error) {
	q := r.DB(ctx).NewSelect().Model((*T)(nil))
	if err := r.filter(q, filters); err != nil {
		return false, fmt.Errorf("exists %s: %w", r.table.Name, err)
	}
	ok, err := q.Exists(ctx)
	if err != nil {
		return false, MapError("exists", r.table.Name, err)
	}
	return ok, nil
}

// Count returns how many rows match filters.
func (r *Repository[T]) Count(ctx context.Context, filters ...Filter) (int, error) {
	q := r.DB(ctx).NewSelect().Model((*T)(nil))
	if err := r.filter(q, filters); err != nil {
		return 0, fmt.Errorf("count %s: %w", r.table.Name, err)
	}
	n, err := q.Count(ctx)
	if err != nil {
		return 0, MapError("count", r.table.Name, err)
	}
	return int(n), nil
}

// Paginate returns one page of the rows that match filters, ordered by
// primary key, as docs/protocol.md 1.4 describes: offset mode when p.Cursor is
// nil, cursor (keyset) mode otherwise. Bad page numbers or sizes are
// ErrInvalidPage, bad cursors ErrInvalidCursor.
func (r *Repository[T]) Paginate(ctx context.Context, p Page, filters ...Filter) (Result[T], error) {
	page, perPage, err := p.normalize()
	if err != nil {
		return Result[T]{}, err
	}
	if p.Cursor != nil {
		return r.paginateCursor(ctx, *p.Cursor, perPage, filters)
	}
	return r.paginateOffset(ctx, page, perPage, filters)
}

func (r *Repository[T]) paginateOffset(ctx context.Context, page, perPage int, filters []Filter) (Result[T], error) {
	db := r.DB(ctx)
	total, err := r.total(ctx, db, filters)
	if err != nil {
		return Result[T]{}, err
	}
	res := Result[T]{
		Items: make([]T, 0),
		Meta:  Meta{Page: page, PerPage: perPage, Total: total, Pages: pagesFor(total, perPage)},
	}
	if page-1 > (math.MaxInt64-1)/perPage {
		return res, nil // far beyond any table
	}
	q := db.NewSelect().Model(&res.Items)
	if err := r.filter(q, filters); err != nil {
		return Result[T]{}, fmt.Errorf("paginate %s: %w", r.table.Name, err)
	}
	err = q.OrderExpr("? ASC", r.pkExpr).Limit(int64(perPage) + 1).Offset(int64(page-1) * int64(perPage)).Scan(ctx)
	if err != nil {
		return Result[T]{}, MapError("paginate", r.table.Name, err)
	}
	if len(res.Items) > perPage {
		res.Items = res.Items[:perPage]
		res.Meta.HasMore = true
	}
	return res, nil
}

// total counts the rows that match filters on db, through the cache when
// there is one and db is not a transaction.
func (r *Repository[T]) total(ctx context.Context, db bun.IDB, filters []Filter) (int, error) {
	q := db.NewSelect().Model((*T)(nil))
	if err := r.filter(q, filters); err != nil {
		return 0, fmt.Errorf("paginate %s: %w", r.table.Name, err)
	}
	// Inside a transaction the total may count uncommitted writes: it is
	// neither taken from the cache nor stored there.
	cache := r.cache
	if isTx(db) {
		cache = nil
	}
	var key string
	if cache != nil {
		key = q.String()
		if n, ok := cache.Count(ctx, r.table.Name, key); ok {
			return n, nil
		}
	}
	n, err := q.Count(ctx)
	if err != nil {
		return 0, MapError("paginate", r.table.Name, err)
	}
	if cache != nil {
		cache.StoreCount(ctx, r.table.Name, key, int(n))
	}
	return int(n), nil
}

func (r *Repository[T]) paginateCursor(ctx context.Context, cursor string, perPage int, filters []Filter) (Result[T], error) {
	res := Result[T]{
		Items: make([]T, 0),
		Meta:  Meta{Page: 1, PerPage: perPage},
	}
	q := r.DB(ctx).NewSelect().Model(&res.Items)
	if err := r.filter(q, filters); err != nil {
		return Result[T]{}, fmt.Errorf("paginate %s: %w", r.table.Name, err)
	}
	if cursor != "" {
		after := reflect.New(r.pk.IndirectType).Elem()
		if err := r.cursor.Decode(cursor, after); err != nil {
			return Result[T]{}, errkind.WithField(fmt.Errorf("%w: %w", ErrInvalidCursor, err), "/cursor", "invalid cursor")
		}
		q.Where("? > ?", r.pkExpr, after.Interface())
	}
	if err := q.OrderExpr("? ASC", r.pkExpr).Limit(int64(perPage) + 1).Scan(ctx); err != nil {
		return Result[T]{}, MapError("paginate", r.table.Name, err)
	}
	if len(res.Items) > perPage {
		res.Items = res.Items[:perPage]
		last := reflect.Indirect(r.pk.Value(reflect.ValueOf(&res.Items[perPage-1]).Elem()))
		next, err := r.cursor.Encode(last)
		if err != nil {
			return Result[T]{}, fmt.Errorf("paginate %s: encode cursor: %w", r.table.Name, err)
		}
		res.Meta.NextCursor = &next
		res.Meta.HasMore = true
	}
	return res, nil
}

func (r *Repository[T]) filter(q *bun.SelectQuery, filters []Filter) error {
	if len(filters) == 0 {
		return nil
	}
	return applyFilters(q.QueryBuilder(), r.table, r.dialect, filters)
}

func (r *Repository[T]) checkAffected(op string, res interface{ RowsAffected() (int64, error) }, err error) error {
	if err != nil {
		return MapError(op, r.table.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return MapError(op, r.table.Name, err)
	}
	if n == 0 {
		return &Error{Op: op, Table: r.table.Name, Kind: ErrNotFound, Err: fmt.Errorf("no row affected")}
	}
	return nil
}

// written invalidates the cached totals of r's table after a write in ctx:
// at once, or, inside a Transactor's transaction, once it has committed.
func (r *Repository[T]) written(ctx context.Context) {
	if r.cache == nil {
		return
	}
	if v, ok := txFor(ctx, r.db); ok && v.written != nil {
		v.written.add(r.cache, r.table.Name)
		return
	}
	// The write is done even if ctx ends now.
	r.cache.Invalidate(context.WithoutCancel(ctx), r.table.Name)
}
