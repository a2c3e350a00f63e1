package audit_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogFillsDefaults(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	closeFn := run(t, l)
	ts := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	require.NoError(t, l.Log(context.Background(), audit.Entry{ActionType: "A"}))
	require.NoError(t, l.Log(context.Background(), audit.Entry{ActionType: "B", Timestamp: ts, Outcome: audit.Error}))
	require.NoError(t, closeFn(5*time.Second))
	rows := sink.stored()
	require.Len(t, rows, 2)
	assert.NotEqual(t, uuid.Nil, rows[0].ID)
	assert.Equal(t, audit.Success, rows[0].Outcome)
	assert.Equal(t, time.UTC, rows[0].Timestamp.Location())
	assert.WithinDuration(t, time.Now(), rows[0].Timestamp, 5*time.Second)
	assert.Equal(t, ts.UTC().Truncate(time.Microsecond), rows[1].Timestamp)
	assert.Equal(t, audit.Error, rows[1].Outcome)
	assert.Equal(t, uint64(2), l.Stats().Written)
}

func TestBatchesBySizeAndTimeout(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		sink := newMemSink()
		l := audit.New(audit.Config{Sink: sink, BatchSize: 10, MaxBatchSize: 10, BatchTimeout: time.Hour})
		closeFn := run(t, l)
		for i := range 35 {
			require.NoError(t, l.Log(context.Background(), entry(i)))
		}
		waitFor(t, 5*time.Second, func() bool { return sink.count() == 30 })
		time.Sleep(50 * time.Millisecond)
		assert.Equal(t, 30, sink.count(), "the last 5 wait for the batch timeout")
		require.NoError(t, closeFn(5*time.Second))
		assert.Equal(t, 35, sink.count())
		assert.Equal(t, []int{10, 10, 10, 5}, sink.batches)
	})
	t.Run("timeout per batch", func(t *testing.T) {
		sink := newMemSink()
		l := audit.New(audit.Config{Sink: sink, BatchSize: 100, BatchTimeout: 200 * time.Millisecond})
		closeFn := run(t, l)
		start := time.Now()
		require.NoError(t, l.Log(context.Background(), entry(0)))
		time.Sleep(100 * time.Millisecond)
		require.NoError(t, l.Log(context.Background(), entry(1)))
		waitFor(t, 5*time.Second, func() bool { return sink.count() == 2 })
		elapsed := time.Since(start)
		// Both go in one batch, timed from the first entry.
		assert.GreaterOrEqual(t, elapsed, 200*time.Millisecond)
		assert.Equal(t, []int{2}, sink.batches)
		require.NoError(t, closeFn(5*time.Second))
	})
}

func TestPolicies(t *testing.T) {
	tests := []struct {
		name   string
		policy audit.Policy
		ctx    func() (context.Context, context.CancelFunc)
		reason audit.DropReason
	}{
		{"drop", audit.Drop, func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, audit.DropQueueFull},
		{"wait", audit.Wait, func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, audit.DropWaitTimeout},
		{"block", audit.Block, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, audit.DropCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newMemSink()
			gate := make(chan struct{})
			sink.setGate(gate)
			l := audit.New(audit.Config{Sink: sink, QueueSize: 5, BatchSize: 2, BatchTimeout: time.Millisecond,
				Policy: tt.policy, WaitTimeout: 50 * time.Millisecond})
			closeFn := run(t, l)
			for i := range 5 {
				require.NoError(t, l.Log(context.Background(), entry(i)))
			}
			// The writer holds a batch in flight: still 5 buffered, the buffer is full.
			ctx, cancel := tt.ctx()
			defer cancel()
			err := l.Log(ctx, entry(99))
			require.ErrorIs(t, err, audit.ErrDropped)
			assert.Contains(t, err.Error(), string(tt.reason))
			assert.Equal(t, errkind.Unavailable, errkind.Of(err))
			st := l.Stats()
			assert.Equal(t, uint64(1), st.DroppedBy[tt.reason])
			assert.Equal(t, 5, st.Pending)
			close(gate)
			require.NoError(t, closeFn(5*time.Second))
			st = l.Stats()
			requireConserved(t, st)
			assert.Equal(t, uint64(5), st.Written)
		})
	}
}

func TestWaitPolicyGetsRoomWhenWriterCatchesUp(t *testing.T) {
	for _, policy := range []audit.Policy{audit.Wait, audit.Block} {
		sink := newMemSink()
		gate := make(chan struct{})
		sink.setGate(gate)
		l := audit.New(audit.Config{Sink: sink, QueueSize: 3, BatchSize: 3, BatchTimeout: time.Millisecond,
			Policy: policy, WaitTimeout: 5 * time.Second})
		closeFn := run(t, l)
		for i := range 3 {
			require.NoError(t, l.Log(context.Background(), entry(i)))
		}
		errc := make(chan error, 1)
		go func() { errc <- l.Log(context.Background(), entry(3)) }()
		time.Sleep(20 * time.Millisecond)
		close(gate)
		require.NoError(t, <-errc)
		require.NoError(t, closeFn(5*time.Second))
		assert.Equal(t, 4, sink.count())
		requireConserved(t, l.Stats())
	}
}

func TestRetriesKeepEntriesUntilTheSinkRecovers(t *testing.T) {
	sink := newMemSink()
	sink.setFail(func([]audit.Entry) error { return errDown })
	reg := prometheus.NewRegistry()
	l := audit.New(audit.Config{Sink: sink, BatchSize: 10, BatchTimeout: time.Millisecond,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, Registerer: reg})
	closeFn := run(t, l)
	for i := range 50 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	waitFor(t, 5*time.Second, func() bool { return l.Stats().WriteErrors >= 5 })
	st := l.Stats()
	assert.Equal(t, 50, st.Pending)
	assert.Zero(t, st.Dropped())
	sink.setFail(nil)
	require.NoError(t, closeFn(5*time.Second))
	st = l.Stats()
	requireConserved(t, st)
	assert.Equal(t, uint64(50), st.Written)
	assert.Equal(t, 50, sink.count())
	assert.Equal(t, float64(50), metricValue(t, reg, "audit_logs_written_total", ""))
	assert.GreaterOrEqual(t, metricValue(t, reg, "audit_log_errors_total", "write"), 5.0)
}

func TestAmbiguousFailuresDoNotDuplicate(t *testing.T) {
	sink := newMemSink()
	sink.ambiguous = true
	var mu sync.Mutex
	n := 0
	sink.setFail(func([]audit.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%2 == 1 {
			return errDown // stored, but reported as failed
		}
		return nil
	})
	l := audit.New(audit.Config{Sink: sink, BatchSize: 7, BatchTimeout: time.Millisecond, RetryMin: time.Millisecond})
	closeFn := run(t, l)
	for i := range 100 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	require.NoError(t, closeFn(5*time.Second))
	st := l.Stats()
	requireConserved(t, st)
	assert.Equal(t, uint64(100), st.Written)
	rows := sink.stored()
	require.Len(t, rows, 100)
	seen := map[string]bool{}
	for _, r := range rows {
		require.False(t, seen[r.RequestID], "duplicate %s", r.RequestID)
		seen[r.RequestID] = true
	}
}

func TestRejectedEntriesAreIsolatedAndCounted(t *testing.T) {
	sink := newMemSink()
	sink.setFail(func(batch []audit.Entry) error {
		for _, e := range batch {
			if e.Resource == "poison" {
				return fmt.Errorf("bad value: %w", audit.ErrRejected)
			}
		}
		return nil
	})
	l := audit.New(audit.Config{Sink: sink, BatchSize: 10, BatchTimeout: time.Millisecond, Chain: true})
	closeFn := run(t, l)
	for i := range 30 {
		e := entry(i)
		if i == 4 || i == 17 {
			e.Resource = "poison"
		}
		require.NoError(t, l.Log(context.Background(), e))
	}
	require.NoError(t, closeFn(5*time.Second))
	st := l.Stats()
	requireConserved(t, st)
	assert.Equal(t, uint64(28), st.Written)
	assert.Equal(t, uint64(2), st.DroppedBy[audit.DropRejected])
	// The chain skips the dropped entries.
	v := &audit.ChainVerifier{}
	for _, e := range sink.stored() {
		require.Nil(t, v.Check(e))
	}
	seq, head, checked := v.Head()
	assert.Equal(t, 28, checked)
	lseq, lhead := l.ChainHead()
	assert.Equal(t, lseq, seq)
	assert.Equal(t, lhead, head)
}

func TestCloseFlushesAndThenDropsLateEntries(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink, BatchTimeout: time.Hour})
	closeFn := run(t, l)
	for i := range 250 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	require.NoError(t, closeFn(5*time.Second))
	assert.Equal(t, 250, sink.count())
	err := l.Log(context.Background(), entry(1000))
	require.ErrorIs(t, err, audit.ErrDropped)
	st := l.Stats()
	assert.Equal(t, uint64(1), st.DroppedBy[audit.DropClosed])
	requireConserved(t, st)
	require.ErrorIs(t, l.Run(context.Background()), audit.ErrClosed)
	require.NoError(t, l.Close(context.Background()))
}

func TestCloseWithoutRunWritesInline(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	for i := range 120 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	require.NoError(t, l.Close(context.Background()))
	assert.Equal(t, 120, sink.count())
	requireConserved(t, l.Stats())
}

func TestCloseAfterRunContextEndedFlushes(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink, BatchTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	for i := range 30 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, 30, l.Stats().Pending)
	require.NoError(t, l.Close(context.Background()))
	assert.Equal(t, 30, sink.count())
	requireConserved(t, l.Stats())
}

func TestCloseDeadlineDropsWhatCannotBeWritten(t *testing.T) {
	sink := newMemSink()
	sink.setFail(func([]audit.Entry) error { return errDown })
	l := audit.New(audit.Config{Sink: sink, BatchSize: 10, BatchTimeout: time.Millisecond, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	closeFn := run(t, l)
	for i := range 25 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	err := closeFn(100 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	st := l.Stats()
	requireConserved(t, st)
	assert.Equal(t, uint64(25), st.DroppedBy[audit.DropShutdown])
}

func TestRunTwiceIsRefused(t *testing.T) {
	writing := make(chan struct{}, 1)
	release := make(chan struct{})
	sink := audit.SinkFunc(func(ctx context.Context, _ []audit.Entry) error {
		select {
		case writing <- struct{}{}:
		default:
		}
		<-release
		return nil
	})
	l := audit.New(audit.Config{Sink: sink, BatchTimeout: time.Millisecond})
	closeFn := run(t, l)
	require.NoError(t, l.Log(context.Background(), entry(1)))
	<-writing // the first Run is writing
	require.ErrorIs(t, l.Run(context.Background()), audit.ErrRunning)
	close(release)
	require.NoError(t, closeFn(time.Second))
	assert.Equal(t, uint64(1), l.Stats().Written)
}

func TestConcurrentProducersConserve(t *testing.T) {
	sink := newMemSink()
	var mu sync.Mutex
	calls := 0
	sink.setFail(func([]audit.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%3 == 0 {
			return errDown
		}
		return nil
	})
	l := audit.New(audit.Config{Sink: sink, QueueSize: 200, BatchSize: 50, BatchTimeout: time.Millisecond,
		Policy: audit.Drop, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	closeFn := run(t, l)
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for i := range 500 {
				_ = l.Log(context.Background(), entry(p*1000+i))
			}
		})
	}
	wg.Wait()
	require.NoError(t, closeFn(5*time.Second))
	st := l.Stats()
	requireConserved(t, st)
	assert.Equal(t, uint64(4000), st.Produced)
	assert.Equal(t, int(st.Written), sink.count())
	t.Logf("produced %d written %d dropped %v", st.Produced, st.Written, st.DroppedBy)
}

func TestMetrics(t *testing.T) {
	sink := newMemSink()
	reg := prometheus.NewRegistry()
	l := audit.New(audit.Config{Sink: sink, QueueSize: 2, Policy: audit.Drop, Registerer: reg, BatchTimeout: time.Hour})
	require.NoError(t, l.Log(context.Background(), audit.Entry{ActionType: "A", Outcome: audit.PermissionDenied}))
	require.NoError(t, l.Log(context.Background(), audit.Entry{ActionType: "A", Outcome: "custom"}))
	require.Error(t, l.Log(context.Background(), audit.Entry{ActionType: "A"}))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP audit_logs_total Audit entries produced, by outcome.
# TYPE audit_logs_total counter
audit_logs_total{outcome="error"} 0
audit_logs_total{outcome="other"} 1
audit_logs_total{outcome="permission_denied"} 1
audit_logs_total{outcome="rate_limited"} 0
audit_logs_total{outcome="success"} 1
# HELP audit_queue_size Audit entries buffered (queued or being written).
# TYPE audit_queue_size gauge
audit_queue_size 2
`), "audit_logs_total", "audit_queue_size"))
	require.NoError(t, l.Close(context.Background()))
	assert.Equal(t, 1.0, metricValue(t, reg, "audit_logs_dropped_total", "queue_full"))
	assert.Equal(t, 2.0, metricValue(t, reg, "audit_logs_written_total", ""))
	// Close wrote the two queued entries in one batch.
	count, sum := histogram(t, reg, "audit_batch_size")
	assert.Equal(t, uint64(1), count)
	assert.Equal(t, 2.0, sum)
	count, sum = histogram(t, reg, "audit_write_duration_seconds")
	assert.Equal(t, uint64(1), count)
	assert.Greater(t, sum, 0.0)
	// A second logger on the same registry shares the collectors.
	l2 := audit.New(audit.Config{Sink: sink, Registerer: reg})
	require.NoError(t, l2.Close(context.Background()))
}

// TestEnqueueWhileWriterBlocked logs into a full buffer in Drop mode while
// the writer hangs and reports the latency of Log (the bar, p99 < 1 ms, is
// measured by BenchmarkLogDropWriterBlocked; no timed assertion here).
func TestEnqueueWhileWriterBlocked(t *testing.T) {
	release := make(chan struct{})
	sink := audit.SinkFunc(func(ctx context.Context, _ []audit.Entry) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	l := audit.New(audit.Config{Sink: sink, Policy: audit.Drop, QueueSize: 1000, BatchTimeout: time.Millisecond})
	closeFn := run(t, l)
	const n = 20000
	lat := make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		_ = l.Log(context.Background(), entry(i))
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	t.Logf("Log in drop mode, writer blocked, %d calls: p50 %v p99 %v max %v", n, lat[n/2], lat[n*99/100], lat[n-1])
	st := l.Stats()
	assert.Equal(t, uint64(n-1000), st.DroppedBy[audit.DropQueueFull])
	close(release)
	require.NoError(t, closeFn(5*time.Second))
	st = l.Stats()
	requireConserved(t, st)
	assert.Equal(t, uint64(1000), st.Written)
}

func TestCloseDeadlineAbandonsAHangingWrite(t *testing.T) {
	sink := newMemSink()
	sink.setGate(make(chan struct{})) // never opens: writes hang until their context ends
	l := audit.New(audit.Config{Sink: sink, BatchSize: 10, BatchTimeout: time.Millisecond, WriteTimeout: time.Hour})
	closeFn := run(t, l)
	for i := range 35 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	waitFor(t, 5*time.Second, func() bool { return l.Stats().Pending == 35 })
	start := time.Now()
	err := closeFn(200 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	st := l.Stats()
	requireConserved(t, st)
	assert.Equal(t, uint64(35), st.DroppedBy[audit.DropShutdown])
	assert.Zero(t, sink.count())
}

func TestConfigDefaults(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	ctx := context.Background()
	// Queue 10,000: without a writer, 10,000 entries are buffered at once.
	for i := range 10000 {
		require.NoError(t, l.Log(ctx, entry(i)))
	}
	assert.Equal(t, 10000, l.Stats().Pending)
	// Policy Drop: the next entry is dropped at once.
	err := l.Log(ctx, entry(10000))
	require.ErrorIs(t, err, audit.ErrDropped)
	assert.Equal(t, uint64(1), l.Stats().DroppedBy[audit.DropQueueFull])
	// MaxBatchSize 5000: Close writes the 10,000 in two batches.
	require.NoError(t, l.Close(ctx))
	requireConserved(t, l.Stats())
	sink.mu.Lock()
	batches := slices.Clone(sink.batches)
	sink.mu.Unlock()
	assert.Equal(t, []int{5000, 5000}, batches)

	// BatchTimeout 1 s: a lone entry is written a second after it is logged.
	sink = newMemSink()
	l = audit.New(audit.Config{Sink: sink})
	closeFn := run(t, l)
	require.NoError(t, l.Log(ctx, entry(1)))
	time.Sleep(500 * time.Millisecond)
	assert.Zero(t, sink.count(), "written before the batch timeout")
	waitFor(t, 5*time.Second, func() bool { return sink.count() == 1 })
	require.NoError(t, closeFn(5*time.Second))
}

func TestStatsCountWaitingEntries(t *testing.T) {
	for _, policy := range []audit.Policy{audit.Wait, audit.Block} {
		l := audit.New(audit.Config{Sink: newMemSink(), QueueSize: 1, Policy: policy, WaitTimeout: time.Hour})
		require.NoError(t, l.Log(context.Background(), entry(0)))
		errc := make(chan error, 1)
		go func() { errc <- l.Log(context.Background(), entry(1)) }()
		waitFor(t, 5*time.Second, func() bool { return l.Stats().Waiting == 1 })
		st := l.Stats()
		assert.Equal(t, uint64(2), st.Produced)
		assert.Equal(t, 1, st.Pending)
		assert.Equal(t, st.Produced, st.Written+st.Dropped()+uint64(st.Pending)+uint64(st.Waiting))
		require.NoError(t, l.Close(context.Background()))
		require.ErrorIs(t, <-errc, audit.ErrDropped)
		st = l.Stats()
		requireConserved(t, st)
		assert.Equal(t, uint64(1), st.Written)
		assert.Equal(t, uint64(1), st.DroppedBy[audit.DropClosed])
	}
}
