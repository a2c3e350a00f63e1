package repository_test

import (
	"context"
	"embed"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"go.uber.org/goleak"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository/dbmigrate"
	"github.com/pkgroute/pkgroute/repository/dbopen"
)

//go:embed testdata/migrations
var migrationFiles embed.FS

func migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "testdata/migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// backend opens a fresh, migrated database.
type backend struct {
	name string
	open func(t testing.TB) *bun.DB
}

func backends() []backend {
	return []backend{
		{"sqlite", openSQLite},
		{"postgres", openPostgres},
	}
}

func openSQLite(t testing.TB) *bun.DB {
	t.Helper()
	return openMigrated(t, "sqlite::memory:")
}

func openPostgres(t testing.TB) *bun.DB {
	t.Helper()
	return openMigrated(t, testenv.PostgresURL(t))
}

func openMigrated(t testing.TB, dsn string) *bun.DB {
	t.Helper()
	return openMigratedConfig(t, dsn, dbopen.Config{})
}

func openMigratedConfig(t testing.TB, dsn string, cfg dbopen.Config) *bun.DB {
	t.Helper()
	ctx := context.Background()
	db, err := dbopen.Open(ctx, dsn, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = dbmigrate.Migrate(ctx, db, migrations(), dbmigrate.Config{Table: "test_migrations"})
	require.NoError(t, err)
	return db
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
