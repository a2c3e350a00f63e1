package auditbun_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/audit/audittest"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

var tableSeq atomic.Int64

// target returns a new target over a table of its own in db: a sink
// writing through w (db itself, or a connection of it), reading back with
// Query.
func target(t *testing.T, db *bun.DB, w bun.IDB, pg bool) audittest.Target {
	ctx := context.Background()
	table := fmt.Sprintf("audit_conf_%d", tableSeq.Add(1))
	sink := auditbun.New(w, auditbun.Config{Table: table})
	t.Cleanup(func() { _ = sink.Close() })
	require.NoError(t, sink.CreateTable(ctx))
	exec := func(t *testing.T, q string) {
		t.Helper()
		_, err := w.ExecContext(ctx, q)
		require.NoError(t, err)
	}
	rename := func(from, to string) func(t *testing.T) func() {
		return func(t *testing.T) func() {
			exec(t, "ALTER TABLE "+from+" RENAME TO "+to)
			return func() { exec(t, "ALTER TABLE "+to+" RENAME TO "+from) }
		}
	}
	tg := audittest.Target{
		Sink: sink,
		Stored: func(t *testing.T) []audit.Entry {
			var all []audit.Entry
			for page := 1; ; page++ {
				res, err := sink.Query(ctx, auditbun.Filter{Page: page, PerPage: 1000})
				require.NoError(t, err)
				all = append(all, res.Items...)
				if !res.Meta.HasMore {
					return all
				}
			}
		},
		Reopen: func(t *testing.T) audit.Sink {
			s := auditbun.New(w, auditbun.Config{Table: table})
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		Break:     rename(table, table+"_away"),
		BreakHead: rename(table+auditbun.ChainHeadSuffix, table+"_head_away"),
	}
	if pg {
		// PostgreSQL's text holds no NUL byte (SQLSTATE 22021).
		tg.Rejected = func(t *testing.T) []audit.Entry {
			es := audittest.Entries(t, 3)
			es[1].UserAgent = "a\x00b"
			return es
		}
	}
	return tg
}

func openDB(t *testing.T, dsn string) *bun.DB {
	db, err := dbopen.Open(context.Background(), dsn, dbopen.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestConformanceSQLiteFile(t *testing.T) {
	db := openDB(t, "sqlite:"+filepath.Join(t.TempDir(), "audit.db"))
	audittest.RunSink(t, func(t *testing.T) audittest.Target { return target(t, db, db, false) })
}

func TestConformanceSQLiteMemory(t *testing.T) {
	db := openDB(t, "sqlite::memory:")
	audittest.RunSink(t, func(t *testing.T) audittest.Target { return target(t, db, db, false) })
}

func TestConformancePostgres(t *testing.T) {
	db := openDB(t, testenv.PostgresURL(t))
	audittest.RunSink(t, func(t *testing.T) audittest.Target { return target(t, db, db, true) })
}

// A sink over a caller's connection writes with INSERT ... ON CONFLICT
// instead of COPY.
func TestConformancePostgresConn(t *testing.T) {
	db := openDB(t, testenv.PostgresURL(t))
	audittest.RunSink(t, func(t *testing.T) audittest.Target {
		conn, err := db.Conn(context.Background())
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return target(t, db, conn, true)
	})
}
