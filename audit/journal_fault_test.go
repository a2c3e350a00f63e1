package audit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/audit/journal"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// The faults of the journal's guarantees, on private PostgreSQL servers:
// every test ends with conservation (produced = stored + dropped, with
// dropped 0 while the journal's bound holds), no duplicates and a verified
// hash chain.

// journaled is a chained Logger writing through a journal into a table.
type journaled struct {
	sink *auditbun.Sink
	j    *journal.Journal
	l    *audit.Logger
	done chan error
}

func openJournaled(t *testing.T, db *bun.DB, dir string, cfg audit.Config) *journaled {
	t.Helper()
	ctx := context.Background()
	sink := auditbunTable(t, db)
	j, err := journal.Open(ctx, dir, journal.Config{Fsync: journal.FsyncBatch, Head: sink.ChainHead})
	require.NoError(t, err)
	cfg.Sink, cfg.Buffer, cfg.Chain = sink, j, true
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	}
	cfg.WriteTimeout = 2 * time.Second
	jl := &journaled{sink: sink, j: j, l: audit.New(cfg), done: make(chan error, 1)}
	go func() { jl.done <- jl.l.Run(ctx) }()
	return jl
}

// close flushes within d and returns the logger's stats.
func (jl *journaled) close(t *testing.T, d time.Duration) (audit.Stats, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := jl.l.Close(ctx)
	if rerr := <-jl.done; !errors.Is(rerr, audit.ErrClosed) {
		require.NoError(t, rerr)
	}
	return jl.l.Stats(), err
}

// stored returns the number of rows and of distinct request ids, and
// verifies the chain.
func stored(t *testing.T, db *bun.DB, sink *auditbun.Sink) (rows, distinct int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.NewRaw(`SELECT count(*), count(DISTINCT request_id) FROM user_actions`).Scan(ctx, &rows, &distinct))
	require.NoError(t, sink.Verify(ctx, &audit.ChainVerifier{}), "hash chain")
	return rows, distinct
}

// produce logs entries at about rate per second until stop is closed and
// returns how many were acknowledged (Log returned nil) and the longest Log
// call.
func produce(l *audit.Logger, rate int, stop <-chan struct{}) (acked *int, slowest *time.Duration, wait func()) {
	var n int
	var worst time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		begin, i := time.Now(), 0
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for target := int(time.Since(begin).Seconds() * float64(rate)); i < target; i++ {
				t0 := time.Now()
				if l.Log(context.Background(), audit.Entry{ActionType: "FAULT", UserID: "u", RequestID: fmt.Sprintf("r-%d", i)}) == nil {
					n++
				}
				worst = max(worst, time.Since(t0))
			}
		}
	})
	return &n, &worst, wg.Wait
}

func TestFaultJournalPostgresStopped(t *testing.T) {
	t.Parallel()
	srv := testenv.StartPostgres(t)
	db := openPostgres(t, withParam(srv.URL("postgres"), "connect_timeout=2"))
	jl := openJournaled(t, db, t.TempDir(), audit.Config{BatchTimeout: 20 * time.Millisecond})

	stop := make(chan struct{})
	acked, slowest, wait := produce(jl.l, faultRate, stop)
	time.Sleep(time.Second)
	srv.Stop("fast")
	time.Sleep(10 * time.Second)
	during := jl.l.Stats()
	srv.Start()
	time.Sleep(time.Second)
	close(stop)
	wait()

	st, err := jl.close(t, 60*time.Second)
	require.NoError(t, err)
	rows, distinct := stored(t, db, jl.sink)
	t.Logf("journal, PostgreSQL stopped 10 s: P=%d S=%d D=%d acknowledged=%d pending in the outage=%d slowest Log=%v write errors=%d",
		st.Produced, rows, st.Dropped(), *acked, during.Pending, *slowest, st.WriteErrors)
	assert.Positive(t, during.Pending, "the journal held the outage's entries")
	assert.Zero(t, st.Dropped())
	assert.Equal(t, int(st.Produced), *acked)
	assert.Equal(t, int(st.Produced), rows, "P = S")
	assert.Equal(t, rows, distinct, "duplicates")
}

func TestFaultJournalShutdownPastItsDeadline(t *testing.T) {
	t.Parallel()
	srv := testenv.StartPostgres(t)
	db := openPostgres(t, withParam(srv.URL("postgres"), "connect_timeout=2"))
	dir := t.TempDir()
	jl := openJournaled(t, db, dir, audit.Config{BatchTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	for i := range 500 {
		require.NoError(t, jl.l.Log(ctx, audit.Entry{ActionType: "FAULT", RequestID: fmt.Sprintf("a-%d", i)}))
	}
	// The table is locked: nothing can be written before the deadline.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `LOCK TABLE user_actions IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	for i := range 500 {
		require.NoError(t, jl.l.Log(ctx, audit.Entry{ActionType: "FAULT", RequestID: fmt.Sprintf("b-%d", i)}))
	}
	st, err := jl.close(t, 300*time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Zero(t, st.Dropped(), "nothing is dropped: the journal keeps it")
	assert.Positive(t, st.Pending)
	require.NoError(t, tx.Rollback())

	// The next start ships what the journal kept.
	jl = openJournaled(t, db, dir, audit.Config{BatchTimeout: 20 * time.Millisecond})
	next, err := jl.close(t, 60*time.Second)
	require.NoError(t, err)
	rows, distinct := stored(t, db, jl.sink)
	t.Logf("shutdown past its deadline: P=%d kept=%d, shipped at the next start=%d, S=%d D=0", st.Produced, st.Pending, next.Written, rows)
	assert.Equal(t, 1000, rows)
	assert.Equal(t, rows, distinct)
	assert.Equal(t, uint64(st.Pending), next.Written)
	assert.Zero(t, next.Dropped())
}

// TestFaultJournalKilled kills a process that logs through the journal
// (kill -9) and checks that, in write-ahead mode, every entry it
// acknowledged is stored once the journal is replayed; in the default mode
// it reports how many acknowledged entries were lost (those staged in
// memory, not yet written to the journal).
func TestFaultJournalKilled(t *testing.T) {
	if os.Getenv("AUDIT_KILL_CHILD") != "" {
		killChild(t)
		return
	}
	t.Parallel()
	for _, mode := range []string{"write-ahead", "default"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testKilled(t, mode)
		})
	}
}

func testKilled(t *testing.T, mode string) {
	srv := testenv.StartPostgres(t)
	dir := t.TempDir()
	db := openPostgres(t, withParam(srv.URL("postgres"), "connect_timeout=2"))
	auditbunTable(t, db)

	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultJournalKilled$", "-test.v=false")
	cmd.Env = append(os.Environ(), "AUDIT_KILL_CHILD="+mode, "AUDIT_KILL_DIR="+dir, "AUDIT_KILL_DB="+srv.URL("postgres"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked[id] = true
			if len(acked) == 3000 { // mid-stream
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			}
		}
	}
	_ = cmd.Wait()
	require.GreaterOrEqual(t, len(acked), 3000)

	// Restart: the journal replays what was not shipped.
	jl := openJournaled(t, db, dir, audit.Config{BatchTimeout: 20 * time.Millisecond})
	replayed := jl.l.Stats().Pending
	_, err = jl.close(t, 60*time.Second)
	require.NoError(t, err)
	rows, distinct := stored(t, db, jl.sink)
	var ids []string
	require.NoError(t, db.NewRaw(`SELECT request_id FROM user_actions`).Scan(context.Background(), &ids))
	have := map[string]bool{}
	for _, id := range ids {
		have[id] = true
	}
	missing := 0
	for id := range acked {
		if !have[id] {
			missing++
		}
	}
	t.Logf("kill -9, %s mode: acknowledged=%d replayed at restart=%d stored=%d missing=%d", mode, len(acked), replayed, rows, missing)
	if mode == "write-ahead" {
		assert.Zero(t, missing, "every acknowledged entry is stored")
	}
	assert.Equal(t, rows, distinct, "duplicates")
}

// auditbunTable returns the sink of the default table, created once the
// just started server answers.
func auditbunTable(t *testing.T, db *bun.DB) *auditbun.Sink {
	t.Helper()
	sink := auditbun.New(db, auditbun.Config{})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := sink.CreateTable(context.Background())
		if err == nil {
			return sink
		}
		require.True(t, time.Now().Before(deadline), "create table: %v", err)
	}
}

// killChild logs entries from 8 goroutines and prints each acknowledged
// one, until it is killed.
func killChild(t *testing.T) {
	db := openPostgres(t, os.Getenv("AUDIT_KILL_DB"))
	jl := openJournaled(t, db, os.Getenv("AUDIT_KILL_DIR"), audit.Config{
		WriteAhead: os.Getenv("AUDIT_KILL_CHILD") == "write-ahead", BatchTimeout: 5 * time.Millisecond})
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; i < 1_000_000; i++ {
				id := fmt.Sprintf("k-%d-%d", g, i)
				if jl.l.Log(context.Background(), audit.Entry{ActionType: "KILL", RequestID: id}) == nil {
					mu.Lock()
					fmt.Fprintf(w, "ACK %s\n", id)
					_ = w.Flush()
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}
