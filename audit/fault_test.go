package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Conservation under faults: two loggers write to their own tables of the
// same database while a fault hits it. "large" has a buffer big enough for
// the outage and must drop nothing; "small" (1000 entries, Drop policy)
// drops. For both, every produced entry is either stored exactly once or
// counted as dropped.

const faultRate = 1000 // entries per second and logger

type faultLogger struct {
	name  string
	queue int
	sink  *auditbun.Sink
	l     *audit.Logger
	done  chan error
}

func openPostgres(t testing.TB, url string) *bun.DB {
	t.Helper()
	sqldb, err := sql.Open("pgx", url)
	require.NoError(t, err)
	db := bun.NewDB(sqldb, pgdialect.New())
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func withParam(url, kv string) string {
	if strings.Contains(url, "?") {
		return url + "&" + kv
	}
	return url + "?" + kv
}

func runFault(t *testing.T, url string, fault func(t *testing.T, db *bun.DB)) {
	ctx := context.Background()
	db := openPostgres(t, withParam(url, "connect_timeout=2"))
	db.SetMaxOpenConns(6)
	loggers := []*faultLogger{{name: "large", queue: 100_000}, {name: "small", queue: 1000}}
	for _, fl := range loggers {
		fl.sink = auditbun.New(db, auditbun.Config{Table: "audit_" + fl.name})
		// The short connect timeout is for the outage; a just started server
		// on a loaded machine may need a few tries.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := fl.sink.CreateTable(ctx)
			if err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "create table: %v", err)
		}
		fl.l = audit.New(audit.Config{Sink: fl.sink, QueueSize: fl.queue, Policy: audit.Drop,
			RetryMin: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond, WriteTimeout: 2 * time.Second})
		fl.done = make(chan error, 1)
		go func() { fl.done <- fl.l.Run(ctx) }()
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		// Keeps the rate whatever the ticker's jitter: each tick catches up
		// with elapsed time x faultRate.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		begin := time.Now()
		n := 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for target := int(time.Since(begin).Seconds() * faultRate); n < target; {
				n++
				for _, fl := range loggers {
					_ = fl.l.Log(ctx, audit.Entry{ActionType: "FAULT", UserID: "u", RequestID: fmt.Sprintf("%s-%d", fl.name, n)})
				}
			}
		}
	})
	time.Sleep(time.Second)
	start := time.Now()
	fault(t, db)
	outage := time.Since(start)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	for _, fl := range loggers {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		require.NoError(t, fl.l.Close(cctx), fl.name)
		cancel()
		require.NoError(t, <-fl.done)
		st := fl.l.Stats()
		var stored, distinct int
		require.NoError(t, db.NewRaw(`SELECT count(*), count(DISTINCT request_id) FROM ?`, bun.Ident("audit_"+fl.name)).
			Scan(ctx, &stored, &distinct))
		dups := stored - distinct
		t.Logf("%s: %-5s queue %6d: outage %v, P=%d S=%d D=%d %s duplicates=%d write errors=%d",
			strings.TrimPrefix(t.Name(), "TestFault"), fl.name, fl.queue, outage.Round(100*time.Millisecond), st.Produced, stored, st.Dropped(), nonZero(st.DroppedBy), dups, st.WriteErrors)
		assert.Zero(t, dups, "%s: duplicates", fl.name)
		assert.Equal(t, st.Produced, uint64(stored)+st.Dropped(), "%s: P = S + D", fl.name)
		assert.Equal(t, st.Written, uint64(stored), "%s: written counter", fl.name)
		assert.Zero(t, st.Pending, fl.name)
		if fl.name == "large" {
			assert.Zero(t, st.Dropped(), "large buffer: nothing dropped")
		}
		for reason, n := range st.DroppedBy {
			if reason != audit.DropQueueFull {
				assert.Zero(t, n, "%s: dropped for %s", fl.name, reason)
			}
		}
	}
}

func nonZero(m map[audit.DropReason]uint64) string {
	var parts []string
	for _, r := range []audit.DropReason{audit.DropQueueFull, audit.DropWaitTimeout, audit.DropCanceled, audit.DropClosed, audit.DropShutdown, audit.DropRejected} {
		if m[r] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", r, m[r]))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestFaultPostgresStoppedFast(t *testing.T) {
	t.Parallel()
	srv := testenv.StartPostgres(t)
	runFault(t, srv.URL("postgres"), func(t *testing.T, _ *bun.DB) {
		srv.Stop("fast")
		time.Sleep(10 * time.Second)
		srv.Start()
	})
}

func TestFaultPostgresStoppedImmediate(t *testing.T) {
	t.Parallel()
	srv := testenv.StartPostgres(t)
	runFault(t, srv.URL("postgres"), func(t *testing.T, _ *bun.DB) {
		srv.Stop("immediate")
		time.Sleep(5 * time.Second)
		srv.Start()
	})
}

func TestFaultPostgresPaused(t *testing.T) {
	t.Parallel()
	srv := testenv.StartPostgres(t)
	runFault(t, srv.URL("postgres"), func(t *testing.T, _ *bun.DB) {
		srv.Pause()
		time.Sleep(5 * time.Second)
		srv.Resume()
	})
}

func TestFaultTableLocked(t *testing.T) {
	t.Parallel()
	runFault(t, testenv.PostgresURL(t), func(t *testing.T, db *bun.DB) {
		ctx := context.Background()
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, `LOCK TABLE audit_large, audit_small IN ACCESS EXCLUSIVE MODE`)
		require.NoError(t, err)
		time.Sleep(5 * time.Second)
		require.NoError(t, tx.Commit())
	})
}

func TestFaultGracefulCloseUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openPostgres(t, testenv.PostgresURL(t))
	sink := auditbun.New(db, auditbun.Config{})
	require.NoError(t, sink.CreateTable(ctx))
	l := audit.New(audit.Config{Sink: sink, QueueSize: 100_000, Policy: audit.Wait})
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = l.Log(ctx, audit.Entry{ActionType: "LOAD", RequestID: fmt.Sprintf("%d-%d", p, i)})
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	pendingAtClose := l.Stats().Pending
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, l.Close(cctx)) // producers keep logging while Close flushes
	flush := time.Since(start)
	close(stop)
	wg.Wait()
	require.NoError(t, <-done)

	st := l.Stats()
	var stored, distinct int
	require.NoError(t, db.NewRaw(`SELECT count(*), count(DISTINCT request_id) FROM user_actions`).Scan(ctx, &stored, &distinct))
	t.Logf("graceful close: pending at close %d flushed in %v, P=%d S=%d D=%d %s duplicates=%d",
		pendingAtClose, flush.Round(time.Millisecond), st.Produced, stored, st.Dropped(), nonZero(st.DroppedBy), stored-distinct)
	assert.Zero(t, stored-distinct)
	assert.Equal(t, st.Produced, uint64(stored)+st.Dropped())
	assert.Equal(t, st.Written, uint64(stored))
	// Only entries offered after Close began are dropped.
	assert.Equal(t, st.Dropped(), st.DroppedBy[audit.DropClosed])
	assert.Positive(t, pendingAtClose)
}
