package auditbun_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite"
)

func openPostgres(t testing.TB, url string) *bun.DB {
	t.Helper()
	sqldb, err := sql.Open("pgx", url)
	require.NoError(t, err)
	db := bun.NewDB(sqldb, pgdialect.New())
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openSQLite(t testing.TB) *bun.DB {
	t.Helper()
	sqldb, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "audit.db")+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	sqldb.SetMaxOpenConns(1)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// run starts l.Run and returns a function that closes the logger and waits
// for Run.
func run(t *testing.T, l *audit.Logger) (closeFn func(time.Duration) error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Run(context.Background()) }()
	closed := false
	closeFn = func(d time.Duration) error {
		if closed {
			return nil
		}
		closed = true
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		err := l.Close(ctx)
		if rerr := <-done; !errors.Is(rerr, audit.ErrClosed) {
			require.NoError(t, rerr)
		}
		return err
	}
	t.Cleanup(func() { _ = closeFn(5 * time.Second) })
	return closeFn
}

// requireConserved checks produced = written + dropped with nothing pending.
func requireConserved(t *testing.T, st audit.Stats) {
	t.Helper()
	require.Zero(t, st.Pending, "pending")
	require.Zero(t, st.Waiting, "waiting")
	require.Equal(t, st.Produced, st.Written+st.Dropped(), "produced = written + dropped: %+v", st)
}

// waitFor polls cond until it holds, failing after d.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
