package dbopen_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"go.uber.org/goleak"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository/dbopen"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, dsn string, cfg dbopen.Config) *bun.DB {
	t.Helper()
	db, err := dbopen.Open(context.Background(), dsn, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func pragma(t *testing.T, db *bun.DB, name string) string {
	t.Helper()
	var v string
	require.NoError(t, db.NewRaw("PRAGMA "+name).Scan(context.Background(), &v))
	return v
}

func TestSQLiteMemory(t *testing.T) {
	db := open(t, "sqlite::memory:", dbopen.Config{MaxOpenConns: 8})
	assert.Equal(t, "sqlite", db.Dialect().Name().String())
	assert.Equal(t, "1", pragma(t, db, "foreign_keys"))
	assert.Equal(t, "5000", pragma(t, db, "busy_timeout"))
	assert.Equal(t, "memory", pragma(t, db, "journal_mode"), "no WAL in memory")
	assert.Equal(t, 1, db.DB.Stats().MaxOpenConnections, "an in-memory database has one connection")

	// The one connection keeps the database alive between queries.
	ctx := context.Background()
	_, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO t (id) VALUES (1)")
	require.NoError(t, err)
	n, err := db.NewSelect().Table("t").Count(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, n)
}

func TestSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	ctx := context.Background()
	db := open(t, "sqlite:"+path, dbopen.Config{BusyTimeout: 2 * time.Second})
	assert.Equal(t, "wal", pragma(t, db, "journal_mode"))
	assert.Equal(t, "1", pragma(t, db, "synchronous"), "NORMAL: WAL stays consistent, the last commits may be lost on power failure")
	assert.Equal(t, "2000", pragma(t, db, "busy_timeout"))
	assert.Equal(t, "1", pragma(t, db, "foreign_keys"))
	assert.Equal(t, "10000", pragma(t, db, "wal_autocheckpoint"))
	assert.Equal(t, 1, db.DB.Stats().MaxOpenConnections, "one writer by default")
	_, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO t (id) VALUES (7)")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	// Reopened with more readers and an explicit pragma of our own.
	db2 := open(t, "sqlite:"+path+"?_pragma=busy_timeout(100)", dbopen.Config{MaxOpenConns: 4})
	assert.Equal(t, "100", pragma(t, db2, "busy_timeout"))
	assert.Equal(t, "1", pragma(t, db2, "synchronous"))
	require.NoError(t, db2.Close())

	// A DSN's own pragmas replace the defaults.
	db3 := open(t, "sqlite:"+path+"?_pragma=Synchronous(FULL)&_pragma=journal_mode(DELETE)", dbopen.Config{})
	assert.Equal(t, "2", pragma(t, db3, "synchronous"))
	assert.Equal(t, "delete", pragma(t, db3, "journal_mode"))
	require.NoError(t, db3.Close())

	db2 = open(t, "sqlite:"+path, dbopen.Config{MaxOpenConns: 4})
	assert.Equal(t, 4, db2.DB.Stats().MaxOpenConnections)
	var id int
	require.NoError(t, db2.NewRaw("SELECT id FROM t").Scan(ctx, &id))
	assert.Equal(t, 7, id)
}

func TestBadDSN(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, dsn, want string
	}{
		{"unknown scheme", "mysql://root@localhost/db", "unsupported DSN scheme"},
		{"empty", "", "unsupported DSN scheme"},
		{"sqlite without path", "sqlite:", "needs a path"},
		{"bad postgres", "postgres://user:s3cret@host:notaport/db", "invalid postgres DSN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dbopen.Open(ctx, tt.dsn, dbopen.Config{})
			require.ErrorContains(t, err, tt.want)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestPostgres(t *testing.T) {
	url := testenv.PostgresURL(t)
	db := open(t, url, dbopen.Config{})
	assert.Equal(t, "pg", db.Dialect().Name().String())
	assert.Equal(t, 20, db.DB.Stats().MaxOpenConnections)
	var n int
	require.NoError(t, db.NewRaw("SELECT ?::int + 1", 41).Scan(context.Background(), &n))
	assert.Equal(t, 42, n)
}

func TestMetricsAndSlowQueries(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs testenv.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()

	db := open(t, testenv.PostgresURL(t), dbopen.Config{Registerer: reg, Logger: logger, SlowQuery: 150 * time.Millisecond})
	_, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
	require.NoError(t, err)
	for range 3 {
		_, err := db.NewSelect().Table("t").Count(ctx)
		require.NoError(t, err)
	}
	_, err = db.ExecContext(ctx, "SELECT pg_sleep(0.3)")
	require.NoError(t, err)

	assert.Equal(t, 2, testutil.CollectAndCount(reg, "db_query_duration_seconds"), "create and select")
	got, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range got {
		names[mf.GetName()] = true
		if mf.GetName() == "db_query_duration_seconds" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "select" {
					assert.EqualValues(t, 3+1, m.GetHistogram().GetSampleCount(), "three counts and the sleep")
				}
			}
		}
	}
	for _, want := range []string{"db_query_duration_seconds", "db_slow_queries_total", "db_pool_connections_in_use", "db_pool_connections_idle", "db_pool_wait_total"} {
		assert.True(t, names[want], "metric %s exported", want)
	}
	// Only the sleep is slow (unless the machine is very busy).
	assert.GreaterOrEqual(t, slowCount(t, reg, "select"), 1.0)
	assert.Contains(t, logs.String(), "slow query")
	assert.Contains(t, logs.String(), "operation=select")
	assert.Contains(t, logs.String(), "pg_sleep(0.3)")

	// A second database in the same registry shares the query metrics but
	// refuses a second pool collector.
	_, err = dbopen.Open(ctx, "sqlite::memory:", dbopen.Config{Registerer: reg})
	require.ErrorContains(t, err, "register pool metrics")
}

// slowCount returns db_slow_queries_total{operation=op}.
func slowCount(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "db_slow_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == op {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no db_slow_queries_total{operation=%q}", op)
	return 0
}

func TestStartupWaitGivesUp(t *testing.T) {
	port := testenv.FreePort(t)
	var logs testenv.Buffer
	start := time.Now()
	_, err := dbopen.Open(context.Background(),
		"postgres://postgres@127.0.0.1:"+strconv.Itoa(port)+"/postgres?sslmode=disable&connect_timeout=1",
		dbopen.Config{StartupTimeout: 700 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.ErrorContains(t, err, "database not ready after")
	elapsed := time.Since(start)
	assert.Less(t, elapsed, 3*time.Second)
	// 100 ms, 200 ms, 400 ms: three retries fit in 700 ms.
	assert.GreaterOrEqual(t, strings.Count(logs.String(), "database not ready"), 3)
	assert.Contains(t, logs.String(), "retry_in=200ms", "the delay doubles")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = dbopen.Open(ctx, "postgres://postgres@127.0.0.1:"+strconv.Itoa(port)+"/postgres", dbopen.Config{})
	require.Error(t, err, "a cancelled context stops the wait")
}

func TestStartupWaitsForServer(t *testing.T) {
	srv := testenv.StartPostgres(t)
	srv.Stop("fast")
	var logs testenv.Buffer
	type result struct {
		db  *bun.DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		db, err := dbopen.Open(context.Background(), srv.URL("postgres"),
			dbopen.Config{StartupTimeout: 30 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		done <- result{db, err}
	}()
	time.Sleep(500 * time.Millisecond)
	srv.Start()
	res := <-done
	require.NoError(t, res.err)
	defer res.db.Close()
	assert.NoError(t, res.db.PingContext(context.Background()))
	assert.Contains(t, logs.String(), "database not ready", "it retried before the server came up")
}

// TestNoCgo checks that the SQLite driver is the pure-Go one: without cgo
// the package still builds and does not pull in mattn/go-sqlite3.
func TestNoCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	deps := string(out)
	assert.Contains(t, deps, "modernc.org/sqlite\n")
	assert.NotContains(t, deps, "github.com/mattn/go-sqlite3")
	assert.NotContains(t, deps, "runtime/cgo")
}

func TestSQLiteLowerFoldsUnicode(t *testing.T) {
	db, err := dbopen.Open(context.Background(), "sqlite::memory:", dbopen.Config{})
	require.NoError(t, err)
	defer db.Close()
	var lowered string
	var null *string
	require.NoError(t, db.QueryRow(`SELECT lower('ÉMILE Zola ÄÖÜ'), lower(NULL)`).Scan(&lowered, &null))
	assert.Equal(t, "émile zola äöü", lowered)
	assert.Nil(t, null)
	var match bool
	require.NoError(t, db.QueryRow(`SELECT lower('Émile') LIKE lower('%ÉMI%')`).Scan(&match))
	assert.True(t, match)
}

func TestSQLiteLowerKeepsTheBuiltInTextForms(t *testing.T) {
	db, err := dbopen.Open(context.Background(), "sqlite::memory:", dbopen.Config{})
	require.NoError(t, err)
	defer db.Close()
	for query, want := range map[string]string{
		`SELECT lower(3.0)`:                     "3.0",
		`SELECT lower(0.1 + 0.2)`:               "0.3",
		`SELECT lower(1e100)`:                   "1.0e+100",
		`SELECT lower(-2.5)`:                    "-2.5",
		`SELECT lower(42)`:                      "42",
		`SELECT lower(x'414243')`:               "abc",
		`SELECT lower(CAST(x'C9FF41' AS TEXT))`: "\xc9\xffa",
	} {
		var got string
		require.NoError(t, db.QueryRow(query).Scan(&got), query)
		assert.Equal(t, want, got, query)
		// upper() is still the built-in: both agree on the text form.
		if !strings.Contains(query, "x'") {
			var up string
			require.NoError(t, db.QueryRow(strings.Replace(query, "lower", "upper", 1)).Scan(&up), query)
			assert.Equal(t, strings.ToUpper(want), up, query)
		}
	}
}
