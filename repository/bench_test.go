package repository_test

import (
	"context"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/pkgroute/pkgroute/repository"
)

// BenchmarkPostgres compares the repository with the same queries written
// by hand with bun, on the same database in the same run.
func BenchmarkPostgres(b *testing.B) { benchmarkBackend(b, openPostgres) }

// BenchmarkSQLite does the same on an in-memory SQLite database, where no
// network hides the repository's own CPU cost.
func BenchmarkSQLite(b *testing.B) { benchmarkBackend(b, openSQLite) }

func benchmarkBackend(b *testing.B, open func(testing.TB) *bun.DB) {
	db := open(b)
	ids := seed(b, db, 1000)
	r := newAuthors(b, db)
	ctx := context.Background()
	// Warm the pool and the server's caches before measuring.
	for i := range 500 {
		if _, err := r.Get(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Paginate(ctx, repository.Offset(1+i%50, 20)); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("Get/repository", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := r.Get(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Get/bun", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			a := new(Author)
			if err := db.NewSelect().Model(a).Where("a.id = ?", ids[i%len(ids)]).Scan(ctx); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})

	// Offset mode: a count and 20+1 rows.
	b.Run("Page20/repository", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			res, err := r.Paginate(ctx, repository.Offset(1+i%50, 20))
			if err != nil || len(res.Items) != 20 {
				b.Fatal(err, len(res.Items))
			}
			i++
		}
	})
	b.Run("Page20/bun", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			page := 1 + i%50
			total, err := db.NewSelect().Model((*Author)(nil)).Count(ctx)
			if err != nil {
				b.Fatal(err)
			}
			items := make([]Author, 0)
			err = db.NewSelect().Model(&items).OrderExpr("a.id ASC").Limit(21).Offset(int64(page-1) * 20).Scan(ctx)
			if err != nil || len(items) < 20 || total != 1000 {
				b.Fatal(err, len(items))
			}
			meta := repository.Meta{Page: page, PerPage: 20, Total: int(total), Pages: 50, HasMore: len(items) > 20}
			items = items[:20]
			_, _ = items, meta
			i++
		}
	})

	// Cursor mode: 20+1 rows after a key.
	b.Run("Cursor20/repository", func(b *testing.B) {
		b.ReportAllocs()
		cursor := ""
		for b.Loop() {
			res, err := r.Paginate(ctx, repository.After(cursor, 20))
			if err != nil {
				b.Fatal(err)
			}
			cursor = ""
			if res.Meta.NextCursor != nil {
				cursor = *res.Meta.NextCursor
			}
		}
	})
	b.Run("Cursor20/bun", func(b *testing.B) {
		b.ReportAllocs()
		var after int64
		for b.Loop() {
			items := make([]Author, 0)
			err := db.NewSelect().Model(&items).Where("a.id > ?", after).OrderExpr("a.id ASC").Limit(21).Scan(ctx)
			if err != nil {
				b.Fatal(err)
			}
			after = 0
			if len(items) > 20 {
				items = items[:20]
				after = items[19].ID
			}
		}
	})

	// The same pairs, alternated call by call, so that the load of a
	// shared machine falls on both alike: ratio is repository / bun.
	getRepo := func(i int) {
		if _, err := r.Get(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
	getBun := func(i int) {
		a := new(Author)
		if err := db.NewSelect().Model(a).Where("a.id = ?", ids[i%len(ids)]).Scan(ctx); err != nil {
			b.Fatal(err)
		}
	}
	pageRepo := func(i int) {
		if _, err := r.Paginate(ctx, repository.Offset(1+i%50, 20)); err != nil {
			b.Fatal(err)
		}
	}
	pageBun := func(i int) {
		page := 1 + i%50
		total, err := db.NewSelect().Model((*Author)(nil)).Count(ctx)
		if err != nil {
			b.Fatal(err)
		}
		items := make([]Author, 0)
		if err := db.NewSelect().Model(&items).OrderExpr("a.id ASC").Limit(21).Offset(int64(page-1) * 20).Scan(ctx); err != nil {
			b.Fatal(err)
		}
		_ = repository.Meta{Page: page, PerPage: 20, Total: int(total), Pages: 50, HasMore: len(items) > 20}
	}
	// Cursor walks, each restarting from the top after its last page.
	var repoCursor string
	cursorRepo := func(int) {
		res, err := r.Paginate(ctx, repository.After(repoCursor, 20))
		if err != nil {
			b.Fatal(err)
		}
		repoCursor = ""
		if res.Meta.NextCursor != nil {
			repoCursor = *res.Meta.NextCursor
		}
	}
	var bunAfter int64
	cursorBun := func(int) {
		items := make([]Author, 0)
		if err := db.NewSelect().Model(&items).Where("a.id > ?", bunAfter).OrderExpr("a.id ASC").Limit(21).Scan(ctx); err != nil {
			b.Fatal(err)
		}
		bunAfter = 0
		if len(items) > 20 {
			bunAfter = items[19].ID
		}
	}
	b.Run("Interleaved/Get", func(b *testing.B) { interleave(b, getRepo, getBun) })
	b.Run("Interleaved/Cursor20", func(b *testing.B) { interleave(b, cursorRepo, cursorBun) })
	b.Run("Interleaved/Page20", func(b *testing.B) { interleave(b, pageRepo, pageBun) })
}

// interleave times repo and hand calls alternately and reports their mean
// times and ratio.
func interleave(b *testing.B, repo, hand func(i int)) {
	var tRepo, tHand time.Duration
	n := 0
	for b.Loop() {
		first, second, t1, t2 := repo, hand, &tRepo, &tHand
		if n%2 == 1 {
			first, second, t1, t2 = hand, repo, &tHand, &tRepo
		}
		start := time.Now()
		first(n)
		mid := time.Now()
		second(n)
		*t1 += mid.Sub(start)
		*t2 += time.Since(mid)
		n++
	}
	b.ReportMetric(float64(tRepo.Nanoseconds())/float64(n), "repo-ns/op")
	b.ReportMetric(float64(tHand.Nanoseconds())/float64(n), "bun-ns/op")
	b.ReportMetric(float64(tRepo)/float64(tHand), "ratio")
}
