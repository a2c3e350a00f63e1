package repository_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/pkgroute/pkgroute/command"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/pkgroute/pkgroute/repository/rediscount"
)

// TestRepository runs the same suite on SQLite and PostgreSQL.
func TestRepository(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *bun.DB)
	}{
		{"CRUD", testCRUD},
		{"NotFound", testNotFound},
		{"Conflict", testConflict},
		{"OtherErrors", testOtherErrors},
		{"Filters", testFilters},
		{"FilterValidation", testFilterValidation},
		{"Transactions", testTransactions},
		{"OffsetPages", testOffsetPages},
		{"InvalidPages", testInvalidPages},
		{"CursorWalk", testCursorWalk},
		{"CursorWalkConcurrentInserts", testCursorWalkConcurrentInserts},
		{"TamperedCursors", testTamperedCursors},
		{"CountCache", testCountCache},
		{"CountCacheInTx", testCountCacheInTx},
	}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.fn(t, be.open(t))
				})
			}
		})
	}
}

func newAuthors(t testing.TB, db bun.IDB) *repository.Repository[Author] {
	t.Helper()
	r, err := repository.New[Author](db, repository.Config{})
	require.NoError(t, err)
	return r
}

// seed inserts n authors named author-001... and returns their ids.
func seed(t testing.TB, db bun.IDB, n int) []int64 {
	t.Helper()
	if n == 0 {
		return nil
	}
	have, err := db.NewSelect().Model((*Author)(nil)).Count(context.Background())
	require.NoError(t, err)
	authors := make([]Author, n)
	for i := range authors {
		authors[i] = Author{Name: fmt.Sprintf("author-%03d", int(have)+i+1)}
	}
	_, err = db.NewInsert().Model(&authors).Returning("id").Exec(context.Background())
	require.NoError(t, err)
	ids := make([]int64, n)
	for i, a := range authors {
		require.NotZero(t, a.ID)
		ids[i] = a.ID
	}
	return ids
}

func testCRUD(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)

	a := &Author{Name: "Ada", Bio: "first"}
	require.NoError(t, r.Create(ctx, a))
	require.NotZero(t, a.ID, "Create reads back the generated key")

	got, err := r.Get(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, *a, *got)

	got.Bio = "updated"
	require.NoError(t, r.Update(ctx, got))
	again, err := r.Get(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, "updated", again.Bio)

	ok, err := r.Exists(ctx, repository.Eq("name", "Ada"))
	require.NoError(t, err)
	assert.True(t, ok)
	n, err := r.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	list, err := r.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Author{*again}, list)

	require.NoError(t, r.Delete(ctx, a.ID))
	ok, err = r.Exists(ctx, repository.Eq("id", a.ID))
	require.NoError(t, err)
	assert.False(t, ok)

	list, err = r.List(ctx)
	require.NoError(t, err)
	assert.NotNil(t, list)
	assert.Empty(t, list)
}

func testNotFound(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)

	_, err := r.Get(ctx, int64(404))
	assertKind(t, err, repository.ErrNotFound, errkind.NotFound)
	assert.Equal(t, "get authors: not found", err.Error())

	err = r.Update(ctx, &Author{ID: 404, Name: "ghost"})
	assertKind(t, err, repository.ErrNotFound, errkind.NotFound)

	err = r.Delete(ctx, int64(404))
	assertKind(t, err, repository.ErrNotFound, errkind.NotFound)

	_, err = r.First(ctx, repository.Eq("name", "ghost"))
	assertKind(t, err, repository.ErrNotFound, errkind.NotFound)
}

func testConflict(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)
	require.NoError(t, r.Create(ctx, &Author{Name: "Ada"}))
	bob := &Author{Name: "Bob"}
	require.NoError(t, r.Create(ctx, bob))

	err := r.Create(ctx, &Author{Name: "Ada"})
	assertKind(t, err, repository.ErrConflict, errkind.Conflict)
	assert.True(t, repository.IsUniqueViolation(err))
	assert.Equal(t, "create authors: already exists", err.Error())

	bob.Name = "Ada"
	err = r.Update(ctx, bob)
	assertKind(t, err, repository.ErrConflict, errkind.Conflict)

	// Same primary key.
	books, err := repository.New[Book](db, repository.Config{})
	require.NoError(t, err)
	require.NoError(t, books.Create(ctx, &Book{ID: 1, AuthorID: bob.ID, Title: "x"}))
	err = books.Create(ctx, &Book{ID: 1, AuthorID: bob.ID, Title: "y"})
	assertKind(t, err, repository.ErrConflict, errkind.Conflict)
}

func testOtherErrors(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	books, err := repository.New[Book](db, repository.Config{})
	require.NoError(t, err)

	// A foreign key violation is neither not-found nor conflict.
	err = books.Create(ctx, &Book{ID: 1, AuthorID: 999, Title: "orphan"})
	require.Error(t, err)
	assert.NotErrorIs(t, err, repository.ErrConflict)
	assert.NotErrorIs(t, err, repository.ErrNotFound)
	assert.Equal(t, errkind.Internal, errkind.Of(err))
	var re *repository.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "create", re.Op)
	assert.Equal(t, "books", re.Table)
	assert.True(t, strings.HasPrefix(err.Error(), "create books: "), err.Error())

	// A cancelled context is reported as such.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = books.Get(cctx, int64(1))
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, repository.ErrNotFound)

	_, err = repository.New[int](db, repository.Config{})
	require.Error(t, err)
	type noPK struct {
		bun.BaseModel `bun:"table:nopk"`
		Name          string
	}
	_, err = repository.New[noPK](db, repository.Config{})
	require.ErrorContains(t, err, "exactly one primary key")
}

func testFilters(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)
	names := []string{"100% pure", "100 pure", "a_b", "axb", `back\slash`, "backslash", "Ada Lovelace", "ADA KING", "Grace"}
	ids := map[string]int64{}
	for _, n := range names {
		a := &Author{Name: n, Bio: "bio of " + n}
		require.NoError(t, r.Create(ctx, a))
		ids[n] = a.ID
	}
	namesOf := func(items []Author) []string {
		out := make([]string, 0, len(items))
		for _, a := range items {
			out = append(out, a.Name)
		}
		return out
	}

	tests := []struct {
		name    string
		filters []repository.Filter
		want    []string
	}{
		{"none", nil, names},
		{"eq", []repository.Filter{repository.Eq("name", "Grace")}, []string{"Grace"}},
		{"eq is exact", []repository.Filter{repository.Eq("name", "grace")}, []string{}},
		{"in", []repository.Filter{repository.In("name", []string{"Grace", "axb", "nobody"})}, []string{"axb", "Grace"}},
		{"in ids", []repository.Filter{repository.In("id", []int64{ids["a_b"], ids["Grace"]})}, []string{"a_b", "Grace"}},
		{"in empty", []repository.Filter{repository.In("name", []string{})}, []string{}},
		{"contains ignores case", []repository.Filter{repository.Contains("name", "ada")}, []string{"Ada Lovelace", "ADA KING"}},
		{"contains upper", []repository.Filter{repository.Contains("name", "PURE")}, []string{"100% pure", "100 pure"}},
		{"percent is literal", []repository.Filter{repository.Contains("name", "%")}, []string{"100% pure"}},
		{"percent in middle", []repository.Filter{repository.Contains("name", "0% p")}, []string{"100% pure"}},
		{"underscore is literal", []repository.Filter{repository.Contains("name", "_")}, []string{"a_b"}},
		{"underscore pattern", []repository.Filter{repository.Contains("name", "a_b")}, []string{"a_b"}},
		{"backslash is literal", []repository.Filter{repository.Contains("name", `\`)}, []string{`back\slash`}},
		{"backslash before s", []repository.Filter{repository.Contains("name", `k\s`)}, []string{`back\slash`}},
		{"quote", []repository.Filter{repository.Contains("name", `'`)}, []string{}},
		{"empty contains matches all", []repository.Filter{repository.Contains("name", "")}, names},
		{"and", []repository.Filter{repository.Contains("name", "pure"), repository.Contains("name", "%")}, []string{"100% pure"}},
		{"or", []repository.Filter{repository.Or(repository.Eq("name", "Grace"), repository.Contains("name", "king"))}, []string{"ADA KING", "Grace"}},
		{"or and", []repository.Filter{
			repository.Or(repository.Eq("name", "Grace"), repository.Contains("name", "ada")),
			repository.Contains("bio", "love"),
		}, []string{"Ada Lovelace"}},
		{"empty or", []repository.Filter{repository.Or()}, []string{}},
		{"or of nil", []repository.Filter{repository.Or(nil, nil)}, []string{}},
		{"nested or", []repository.Filter{repository.Or(repository.Eq("name", "axb"), repository.Or(repository.Eq("name", "a_b"), repository.Eq("name", "Grace")))}, []string{"a_b", "axb", "Grace"}},
		{"nil filter ignored", []repository.Filter{nil, repository.Eq("name", "Grace")}, []string{"Grace"}},
		{"eq nil", []repository.Filter{repository.Eq("bio", nil)}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := r.List(ctx, tt.filters...)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.want, namesOf(items))

			n, err := r.Count(ctx, tt.filters...)
			require.NoError(t, err)
			assert.Equal(t, len(tt.want), n)

			ok, err := r.Exists(ctx, tt.filters...)
			require.NoError(t, err)
			assert.Equal(t, len(tt.want) > 0, ok)

			page, err := r.Paginate(ctx, repository.Offset(1, 3), tt.filters...)
			require.NoError(t, err)
			assert.Equal(t, len(tt.want), page.Meta.Total)
			assert.Len(t, page.Items, min(3, len(tt.want)))
		})
	}

	first, err := r.First(ctx, repository.Contains("name", "pure"))
	require.NoError(t, err)
	assert.Equal(t, "100% pure", first.Name, "the smallest id comes first")
}

func testFilterValidation(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)
	require.NoError(t, r.Create(ctx, &Author{Name: "Ada"}))

	long := strings.Repeat("é", repository.MaxContainsLen+1)
	tests := []struct {
		name    string
		filter  repository.Filter
		wantMsg string
	}{
		{"unknown column", repository.Eq("nope", 1), `unknown column "nope"`},
		{"injection as column", repository.Eq("name = name OR 1=1 --", 1), "unknown column"},
		{"go field name is not a column", repository.Eq("Name", "Ada"), `unknown column "Name"`},
		{"unknown column in contains", repository.Contains("password", "x"), "unknown column"},
		{"unknown column in in", repository.In("x", []int{1}), "unknown column"},
		{"unknown column inside or", repository.Or(repository.Eq("name", "Ada"), repository.Eq("nope", 1)), "unknown column"},
		{"contains too long", repository.Contains("name", long), "longer than 255"},
		{"contains nul", repository.Contains("name", "a\x00b"), "valid text"},
		{"contains bad utf8", repository.Contains("name", "a\xffb"), "valid text"},
		{"too many in values", repository.In("id", make([]int, repository.MaxInValues+1)), "more than 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.List(ctx, tt.filter)
			assertKind(t, err, repository.ErrInvalidFilter, errkind.InvalidData)
			assert.Contains(t, err.Error(), tt.wantMsg)

			_, err = r.Count(ctx, tt.filter)
			assertKind(t, err, repository.ErrInvalidFilter, errkind.InvalidData)
			_, err = r.Exists(ctx, tt.filter)
			assertKind(t, err, repository.ErrInvalidFilter, errkind.InvalidData)
			_, err = r.Paginate(ctx, repository.Page{}, tt.filter)
			assertKind(t, err, repository.ErrInvalidFilter, errkind.InvalidData)
			_, err = r.Paginate(ctx, repository.After("", 5), tt.filter)
			assertKind(t, err, repository.ErrInvalidFilter, errkind.InvalidData)
		})
	}

	// The longest accepted substring still works.
	items, err := r.List(ctx, repository.Contains("name", strings.Repeat("é", repository.MaxContainsLen)))
	require.NoError(t, err)
	assert.Empty(t, items)
	n, err := r.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the table survived")
}

func testTransactions(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)
	txr := repository.NewTransactor(db, nil)
	boom := errors.New("boom")

	// A failing function rolls back every write made through the context.
	err := txr.InTx(ctx, func(ctx context.Context) error {
		require.NoError(t, r.Create(ctx, &Author{Name: "in-tx"}))
		n, err := r.Count(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n, "the transaction sees its own write")
		return boom
	})
	require.ErrorIs(t, err, boom)
	n, err := r.Count(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "rolled back")

	// A conflict inside the transaction rolls back the earlier write too.
	require.NoError(t, r.Create(ctx, &Author{Name: "taken"}))
	create := command.InTx(txr, command.Func[[]string, int](func(ctx context.Context, names []string) (int, error) {
		for _, name := range names {
			if err := r.Create(ctx, &Author{Name: name}); err != nil {
				return 0, err
			}
		}
		return r.Count(ctx)
	}))
	_, err = create.Execute(ctx, []string{"fresh", "taken"})
	assertKind(t, err, repository.ErrConflict, errkind.Conflict)
	exists, err := r.Exists(ctx, repository.Eq("name", "fresh"))
	require.NoError(t, err)
	assert.False(t, exists, "fresh was rolled back with the conflict")

	got, err := create.Execute(ctx, []string{"one", "two"})
	require.NoError(t, err)
	assert.Equal(t, 3, got)
	n, err = r.Count(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n, "committed")

	// Nested InTx joins the outer transaction.
	err = txr.InTx(ctx, func(ctx context.Context) error {
		require.NoError(t, txr.InTx(ctx, func(ctx context.Context) error {
			return r.Create(ctx, &Author{Name: "nested"})
		}))
		return boom
	})
	require.ErrorIs(t, err, boom)
	exists, err = r.Exists(ctx, repository.Eq("name", "nested"))
	require.NoError(t, err)
	assert.False(t, exists, "the inner write went with the outer rollback")

	// A panic rolls back too.
	assert.Panics(t, func() {
		_ = txr.InTx(ctx, func(ctx context.Context) error {
			require.NoError(t, r.Create(ctx, &Author{Name: "panicked"}))
			panic("kaboom")
		})
	})
	exists, err = r.Exists(ctx, repository.Eq("name", "panicked"))
	require.NoError(t, err)
	assert.False(t, exists)

	// bun's own RunInTx with WithDB.
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := r.WithDB(tx).Create(ctx, &Author{Name: "bun-tx"}); err != nil {
			return err
		}
		// IDB gives the transaction to hand-written queries.
		require.Equal(t, bun.IDB(db), repository.IDB(ctx, db), "RunInTx alone puts nothing in the context")
		return boom
	})
	require.ErrorIs(t, err, boom)
	exists, err = r.Exists(ctx, repository.Eq("name", "bun-tx"))
	require.NoError(t, err)
	assert.False(t, exists)

	require.NoError(t, txr.InTx(ctx, func(ctx context.Context) error {
		_, isTx := repository.IDB(ctx, db).(bun.Tx)
		assert.True(t, isTx, "IDB finds the transaction of the same database")
		return nil
	}))
}

func testOffsetPages(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	// One table, growing: the cases are grouped by row count.
	r := newAuthors(t, db)
	type pageCase struct {
		page, perPage int
		wantItems     int
		wantFirst     int // 1-based index of the first row, 0 when empty
		wantMore      bool
	}
	steps := []struct {
		rows      int
		wantPages int // with per_page 20
		cases     []pageCase
	}{
		{0, 0, []pageCase{{1, 20, 0, 0, false}, {2, 20, 0, 0, false}}},
		{1, 1, []pageCase{{1, 20, 1, 1, false}, {2, 20, 0, 0, false}, {1, 1, 1, 1, false}}},
		{40, 2, []pageCase{ // exact multiple
			{1, 20, 20, 1, true}, {2, 20, 20, 21, false}, {3, 20, 0, 0, false},
			{1, 40, 40, 1, false}, {4, 10, 10, 31, false}, {1, 1000, 40, 1, false},
		}},
		{45, 3, []pageCase{ // remainder
			{1, 20, 20, 1, true}, {2, 20, 20, 21, true}, {3, 20, 5, 41, false}, {4, 20, 0, 0, false},
			{45, 1, 1, 45, false}, {44, 1, 1, 44, true}, {9, 5, 5, 41, false},
		}},
	}
	var ids []int64
	for _, step := range steps {
		ids = append(ids, seed(t, db, step.rows-len(ids))...)
		for _, c := range step.cases {
			t.Run(fmt.Sprintf("rows=%d/page=%d/per_page=%d", step.rows, c.page, c.perPage), func(t *testing.T) {
				res, err := r.Paginate(ctx, repository.Offset(c.page, c.perPage))
				require.NoError(t, err)
				require.NotNil(t, res.Items)
				require.Len(t, res.Items, c.wantItems)
				if c.wantFirst > 0 {
					assert.Equal(t, ids[c.wantFirst-1], res.Items[0].ID)
					assert.Equal(t, ids[c.wantFirst-1+c.wantItems-1], res.Items[c.wantItems-1].ID)
				}
				wantPages := (step.rows + c.perPage - 1) / c.perPage
				assert.Equal(t, repository.Meta{
					Page: c.page, PerPage: c.perPage, Total: step.rows, Pages: wantPages, HasMore: c.wantMore,
				}, res.Meta)
			})
		}
		res, err := r.Paginate(ctx, repository.Page{})
		require.NoError(t, err)
		assert.Equal(t, step.wantPages, res.Meta.Pages)
		assert.Equal(t, 1, res.Meta.Page)
		assert.Equal(t, repository.DefaultPerPage, res.Meta.PerPage)
	}

	// Past the end: an empty list, not null.
	res, err := r.Paginate(ctx, repository.Offset(1<<40, 1000))
	require.NoError(t, err)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	assert.JSONEq(t, `{"items":[],"meta":{"page":1099511627776,"per_page":1000,"total":45,"pages":1,"next_cursor":null,"has_more":false}}`, string(b))
}

func testInvalidPages(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)
	seed(t, db, 3)
	ptr := func(v int) *int { return &v }
	tests := []struct {
		name      string
		page      repository.Page
		path, msg string
	}{
		{"page 0", repository.Offset(0, 20), "/page", "minimum: want >= 1"},
		{"page -1", repository.Offset(-1, 20), "/page", "minimum: want >= 1"},
		{"per_page 0", repository.Offset(1, 0), "/per_page", "minimum: want >= 1"},
		{"per_page -5", repository.Offset(1, -5), "/per_page", "minimum: want >= 1"},
		{"per_page 1001", repository.Offset(1, 1001), "/per_page", "maximum: want <= 1000"},
		{"only per_page 0", repository.Page{PerPage: ptr(0)}, "/per_page", "minimum: want >= 1"},
		{"only page 0", repository.Page{Page: ptr(0)}, "/page", "minimum: want >= 1"},
		{"cursor per_page 0", repository.After("", 0), "/per_page", "minimum: want >= 1"},
		{"cursor per_page 1001", repository.After("", 1001), "/per_page", "maximum: want <= 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Paginate(ctx, tt.page)
			assertKind(t, err, repository.ErrInvalidPage, errkind.InvalidData)
			assert.Equal(t, []errkind.Field{{Path: tt.path, Msg: tt.msg}}, errkind.DetailsOf(err))
		})
	}
	res, err := r.Paginate(ctx, repository.Offset(1, 1000))
	require.NoError(t, err)
	assert.Len(t, res.Items, 3)

	// The wire form decodes into Page: absent fields take the defaults,
	// explicit ones are checked.
	var p repository.Page
	require.NoError(t, json.Unmarshal([]byte(`{"per_page":0}`), &p))
	_, err = r.Paginate(ctx, p)
	assertKind(t, err, repository.ErrInvalidPage, errkind.InvalidData)
	p = repository.Page{}
	require.NoError(t, json.Unmarshal([]byte(`{"cursor":""}`), &p))
	res, err = r.Paginate(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, repository.Meta{Page: 1, PerPage: 20}, res.Meta)
}

func testCursorWalk(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)

	// Empty table.
	res, err := r.Paginate(ctx, repository.After("", 5))
	require.NoError(t, err)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	assert.JSONEq(t, `{"items":[],"meta":{"page":1,"per_page":5,"total":0,"pages":0,"next_cursor":null,"has_more":false}}`, string(b))

	for _, rows := range []int{1, 10, 23} {
		ids := seed(t, db, rows-countRows(t, r))
		_ = ids
		all, err := r.List(ctx)
		require.NoError(t, err)
		want := make([]int64, len(all))
		for i, a := range all {
			want[i] = a.ID
		}
		got := walk(t, r, 5, nil)
		assert.Equal(t, want, got, "rows=%d", rows)
	}

	// With a filter, and a page number that cursor mode ignores.
	got := walk(t, r, 3, []repository.Filter{repository.Contains("name", "-01")})
	assert.Len(t, got, 10) // author-010 .. author-019
	p := repository.After("", 100)
	p.Page = new(int)
	*p.Page = 7
	res, err = r.Paginate(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Meta.Page)
	assert.Len(t, res.Items, 23)
	assert.Nil(t, res.Meta.NextCursor)
	assert.False(t, res.Meta.HasMore)
}

func countRows(t *testing.T, r *repository.Repository[Author]) int {
	n, err := r.Count(context.Background())
	require.NoError(t, err)
	return n
}

// walk pages through r in cursor mode and returns the ids in order,
// checking each page's meta.
func walk(t *testing.T, r *repository.Repository[Author], perPage int, filters []repository.Filter) []int64 {
	return walkPaused(t, r, perPage, filters, 0)
}

// walkPaused is walk with a pause between pages.
func walkPaused(t *testing.T, r *repository.Repository[Author], perPage int, filters []repository.Filter, pause time.Duration) []int64 {
	t.Helper()
	var ids []int64
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10000, "walk does not end")
		res, err := r.Paginate(context.Background(), repository.After(cursor, perPage), filters...)
		require.NoError(t, err)
		require.NotNil(t, res.Items)
		assert.Equal(t, 1, res.Meta.Page)
		assert.Equal(t, perPage, res.Meta.PerPage)
		assert.Zero(t, res.Meta.Total)
		assert.Zero(t, res.Meta.Pages)
		assert.Equal(t, res.Meta.NextCursor != nil, res.Meta.HasMore)
		for _, a := range res.Items {
			ids = append(ids, a.ID)
		}
		if res.Meta.NextCursor == nil {
			assert.LessOrEqual(t, len(res.Items), perPage)
			return ids
		}
		require.Len(t, res.Items, perPage, "only the last page is short")
		cursor = *res.Meta.NextCursor
		time.Sleep(pause)
		_, err = base64.RawURLEncoding.DecodeString(cursor)
		require.NoError(t, err, "cursors are base64url")
	}
}

func testCursorWalkConcurrentInserts(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)
	initial := seed(t, db, 60)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	started := make(chan struct{})
	inserted := 0
	wg.Go(func() {
		defer func() {
			if inserted == 0 {
				close(started)
			}
		}()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.Create(ctx, &Author{Name: fmt.Sprintf("late-%04d", i)}); err != nil {
				t.Errorf("concurrent insert: %v", err)
				return
			}
			inserted++
			if inserted == 1 {
				close(started)
			}
			time.Sleep(time.Millisecond)
		}
	})
	<-started
	ids := walkPaused(t, r, 4, nil, 2*time.Millisecond)
	close(stop)
	wg.Wait()
	require.Positive(t, inserted)

	seen := map[int64]int{}
	for i, id := range ids {
		seen[id]++
		if i > 0 {
			require.Greater(t, id, ids[i-1], "ids come in key order")
		}
	}
	for id, n := range seen {
		require.Equal(t, 1, n, "id %d returned %d times", id, n)
	}
	for _, id := range initial {
		require.Equal(t, 1, seen[id], "pre-existing id %d returned once", id)
	}
	// The first insert committed before the walk began, so the walk went
	// past the pre-existing rows.
	require.Greater(t, len(ids), len(initial), "rows inserted during the walk were returned")

	// Rows are only ever added, and by one writer in key order: every row
	// up to the last one returned, whether it existed before the walk or
	// was inserted during it, was returned exactly once.
	last := ids[len(ids)-1]
	all, err := r.List(ctx)
	require.NoError(t, err)
	below := 0
	for _, a := range all {
		if a.ID <= last {
			below++
			require.Equal(t, 1, seen[a.ID], "id %d <= last returned id %d returned once", a.ID, last)
		}
	}
	assert.Equal(t, len(ids), below, "the walk returned only rows of the table")
	t.Logf("walked %d rows (%d pre-existing) while %d were inserted", len(ids), len(initial), inserted)
}

func testTamperedCursors(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	r := newAuthors(t, db)
	seed(t, db, 10)
	res, err := r.Paginate(ctx, repository.After("", 3))
	require.NoError(t, err)
	require.NotNil(t, res.Meta.NextCursor)
	good := *res.Meta.NextCursor

	raw, err := base64.RawURLEncoding.DecodeString(good)
	require.NoError(t, err)
	flipped := append([]byte(nil), raw...)
	flipped[0] ^= 0x01 // changes the key
	macFlip := append([]byte(nil), raw...)
	macFlip[len(macFlip)-1] ^= 0x80

	otherKey, err := repository.New[Author](db, repository.Config{CursorKey: []byte("another secret")})
	require.NoError(t, err)
	otherRes, err := otherKey.Paginate(ctx, repository.After("", 3))
	require.NoError(t, err)
	books, err := repository.New[Book](db, repository.Config{})
	require.NoError(t, err)
	require.NoError(t, books.Create(ctx, &Book{ID: 1, AuthorID: 1, Title: "a"}))
	require.NoError(t, books.Create(ctx, &Book{ID: 2, AuthorID: 1, Title: "b"}))
	bookRes, err := books.Paginate(ctx, repository.After("", 1))
	require.NoError(t, err)
	require.NotNil(t, bookRes.Meta.NextCursor)

	tests := map[string]string{
		"flipped key byte":   base64.RawURLEncoding.EncodeToString(flipped),
		"flipped mac byte":   base64.RawURLEncoding.EncodeToString(macFlip),
		"truncated":          good[:len(good)-2],
		"not base64":         "!!not-base64!!",
		"standard base64":    base64.StdEncoding.EncodeToString(raw) + "=",
		"bare key":           base64.RawURLEncoding.EncodeToString([]byte("3")),
		"short":              "AA",
		"other key":          *otherRes.Meta.NextCursor,
		"other table":        *bookRes.Meta.NextCursor,
		"very long":          strings.Repeat("A", 4096),
		"sql in cursor":      base64.RawURLEncoding.EncodeToString([]byte("1; DROP TABLE authors")),
		"appended character": good + "A",
	}
	for name, cursor := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := r.Paginate(ctx, repository.After(cursor, 3))
			assertKind(t, err, repository.ErrInvalidCursor, errkind.InvalidData)
			assert.Equal(t, []errkind.Field{{Path: "/cursor", Msg: "invalid cursor"}}, errkind.DetailsOf(err))
		})
	}
	// The good one still works and continues after the first page.
	next, err := r.Paginate(ctx, repository.After(good, 3))
	require.NoError(t, err)
	require.Len(t, next.Items, 3)
	assert.Greater(t, next.Items[0].ID, res.Items[2].ID)
	assert.Equal(t, 10, countRows(t, r))
}

func testCountCache(t *testing.T, db *bun.DB) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cache := repository.NewMemoryCountCache(repository.MemoryCountCacheConfig{TTL: time.Minute, Now: clock})
	r, err := repository.New[Author](db, repository.Config{CountCache: cache})
	require.NoError(t, err)
	seed(t, db, 3)

	total := func(filters ...repository.Filter) int {
		t.Helper()
		res, err := r.Paginate(ctx, repository.Offset(1, 2), filters...)
		require.NoError(t, err)
		return res.Meta.Total
	}
	assert.Equal(t, 3, total())
	assert.Equal(t, 1, total(repository.Eq("name", "author-001")))

	// A write that bypasses the repository is not seen while the entry lives.
	seed2 := []Author{{Name: "raw-1"}}
	_, err = db.NewInsert().Model(&seed2).Exec(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, total(), "cached")

	// A write through the repository invalidates the table.
	require.NoError(t, r.Create(ctx, &Author{Name: "via-repo"}))
	assert.Equal(t, 5, total())

	_, err = db.NewDelete().Model((*Author)(nil)).Where("name = ?", "raw-1").Exec(ctx)
	require.NoError(t, err)
	assert.Equal(t, 5, total(), "cached")
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	assert.Equal(t, 4, total(), "expired")

	// Transactions invalidate too.
	id := seedID(t, r, "author-002")
	require.NoError(t, repository.NewTransactor(db, nil).InTx(ctx, func(ctx context.Context) error {
		return r.Delete(ctx, id)
	}))
	assert.Equal(t, 3, total())
}

// recordingCache is a CountCache that records the tables it invalidates.
type recordingCache struct {
	repository.CountCache

	mu          sync.Mutex
	invalidated []string
}

func (c *recordingCache) Invalidate(ctx context.Context, table string) {
	c.mu.Lock()
	c.invalidated = append(c.invalidated, table)
	c.mu.Unlock()
	c.CountCache.Invalidate(ctx, table)
}

func (c *recordingCache) invalidations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.invalidated...)
}

// testCountCacheInTx checks that totals counted inside a transaction bypass
// the count cache, and that a transaction's writes invalidate it once the
// transaction has committed, with an in-memory and a Redis cache.
func testCountCacheInTx(t *testing.T, db *bun.DB) {
	caches := []struct {
		name string
		new  func(t *testing.T) repository.CountCache
	}{
		{"memory", func(*testing.T) repository.CountCache {
			return repository.NewMemoryCountCache(repository.MemoryCountCacheConfig{TTL: time.Hour})
		}},
		{"redis", func(t *testing.T) repository.CountCache {
			opt, err := redis.ParseURL(testenv.RedisURL(t))
			require.NoError(t, err)
			client := redis.NewClient(opt)
			t.Cleanup(func() { _ = client.Close() })
			return rediscount.New(client, rediscount.Config{Prefix: testenv.RedisPrefix(t), TTL: time.Hour})
		}},
	}
	// A reader outside a transaction must be able to run while it is open.
	db = concurrentDB(t, db)
	ctx := context.Background()
	txr := repository.NewTransactor(db, nil)
	boom := errors.New("boom")
	for _, c := range caches {
		t.Run(c.name, func(t *testing.T) {
			cache := &recordingCache{CountCache: c.new(t)}
			r, err := repository.New[Author](db, repository.Config{CountCache: cache})
			require.NoError(t, err)
			total := func(ctx context.Context) int {
				t.Helper()
				res, err := r.Paginate(ctx, repository.Offset(1, 2))
				require.NoError(t, err)
				return res.Meta.Total
			}
			seed(t, db, 2)

			t.Run("TransactionIgnoresCachedTotal", func(t *testing.T) {
				base := total(ctx)
				// Not through the repository: the cached total is now stale.
				_, err := db.NewInsert().Model(&Author{Name: "raw-" + c.name}).Exec(ctx)
				require.NoError(t, err)
				require.Equal(t, base, total(ctx), "cached")
				require.NoError(t, txr.InTx(ctx, func(ctx context.Context) error {
					assert.Equal(t, base+1, total(ctx), "counted in the transaction, not read from the cache")
					return nil
				}))
				require.NoError(t, db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					res, err := r.WithDB(tx).Paginate(ctx, repository.Offset(1, 2))
					require.NoError(t, err)
					assert.Equal(t, base+1, res.Meta.Total, "counted in the bun.Tx, not read from the cache")
					return nil
				}))
				require.NoError(t, r.Create(ctx, &Author{Name: "refresh-" + c.name}))
				assert.Equal(t, base+2, total(ctx))
			})

			t.Run("RolledBackWriteNotCached", func(t *testing.T) {
				base := total(ctx)
				err := txr.InTx(ctx, func(ctx context.Context) error {
					require.NoError(t, r.Create(ctx, &Author{Name: "rolled-back-" + c.name}))
					assert.Equal(t, base+1, total(ctx), "the transaction counts its own write")
					return boom
				})
				require.ErrorIs(t, err, boom)
				assert.Equal(t, base, total(ctx), "the rolled-back total was not cached")

				err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					rtx := r.WithDB(tx)
					require.NoError(t, rtx.Create(ctx, &Author{Name: "rolled-back-bun-" + c.name}))
					res, err := rtx.Paginate(ctx, repository.Offset(1, 2))
					require.NoError(t, err)
					assert.Equal(t, base+1, res.Meta.Total)
					return boom
				})
				require.ErrorIs(t, err, boom)
				assert.Equal(t, base, total(ctx), "the total of the rolled-back bun.Tx was not cached")
			})

			t.Run("CommitInvalidates", func(t *testing.T) {
				base := total(ctx)
				before := len(cache.invalidations())
				require.NoError(t, txr.InTx(ctx, func(txCtx context.Context) error {
					for i := range 3 {
						require.NoError(t, r.Create(txCtx, &Author{Name: fmt.Sprintf("committed-%s-%d", c.name, i)}))
					}
					// A reader outside the transaction sees, and caches, the
					// total before the commit.
					assert.Equal(t, base, total(ctx))
					assert.Len(t, cache.invalidations(), before, "nothing invalidated before the commit")
					return nil
				}))
				assert.Equal(t, []string{"authors"}, cache.invalidations()[before:], "one invalidation, after the commit")
				assert.Equal(t, base+3, total(ctx), "the commit invalidated the total cached during the transaction")

				// A nested transaction's write is invalidated when the outer one commits.
				require.NoError(t, txr.InTx(ctx, func(txCtx context.Context) error {
					require.NoError(t, txr.InTx(txCtx, func(txCtx context.Context) error {
						return r.Create(txCtx, &Author{Name: "nested-" + c.name})
					}))
					assert.Equal(t, base+3, total(ctx), "before the outer commit")
					return nil
				}))
				assert.Equal(t, base+4, total(ctx), "after the outer commit")
			})
		})
	}
}

// concurrentDB returns a database like db (fresh and migrated) on which a
// query outside a transaction runs while the transaction is open: db itself
// on PostgreSQL, and for SQLite, whose in-memory databases have a single
// connection, a WAL database in a file with two connections.
func concurrentDB(t *testing.T, db *bun.DB) *bun.DB {
	t.Helper()
	if db.Dialect().Name() != dialect.SQLite {
		return db
	}
	return openMigratedConfig(t, "sqlite:"+filepath.Join(t.TempDir(), "concurrent.db"), dbopen.Config{MaxOpenConns: 2})
}

func seedID(t *testing.T, r *repository.Repository[Author], name string) int64 {
	a, err := r.First(context.Background(), repository.Eq("name", name))
	require.NoError(t, err)
	return a.ID
}

func assertKind(t *testing.T, err error, sentinel error, kind errkind.Kind) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, sentinel)
	assert.Equal(t, kind, errkind.Of(err), "kind of %v", err)
}
