package redislimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/ratelimit/redislimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// faultTimeout bounds each Redis call: long enough that a healthy
	// server answers within it on a loaded machine, so that only the faults
	// make calls fail.
	faultTimeout = 2 * time.Second
	// faultWait is how long the test waits for something that takes a
	// timeout or two: the phases last until enough decisions were made in
	// them, not a fixed time.
	faultWait = 30 * time.Second
)

type decision struct {
	phase   int32 // phase when the call started and ended, -1 if they differ
	took    time.Duration
	allowed bool
	remain  int
	err     error
	started time.Time
}

const (
	phaseHealthy int32 = iota
	phaseStopped
	phaseRestarted
	phasePaused
	phaseResumed
)

var phaseNames = []string{"healthy", "stopped", "restarted", "paused", "resumed"}

// TestFaults runs load against a private redis-server that is stopped,
// restarted (its script cache is then empty) and paused, in both fail modes.
func TestFaults(t *testing.T) {
	t.Parallel()
	for _, mode := range []ratelimit.FailMode{ratelimit.FailClosed, ratelimit.FailOpen} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartRedis(t)
			client, err := redislimit.NewClient(srv.URL(), faultTimeout)
			require.NoError(t, err)
			defer client.Close()
			reg := prometheus.NewRegistry()
			limiter := redislimit.New(client, redislimit.Config{FailMode: mode, Timeout: faultTimeout, RetryAfter: 2 * time.Second, Registerer: reg})
			conns := redislimit.NewConnections(client, redislimit.ConnectionsConfig{
				FailMode: mode, Timeout: faultTimeout, Registerer: reg, Lease: time.Second, RenewInterval: 50 * time.Millisecond,
			})
			runCtx, stopRun := context.WithCancel(context.Background())
			runDone := make(chan error)
			go func() { runDone <- conns.Run(runCtx) }()
			defer func() { stopRun(); require.NoError(t, <-runDone) }()
			// slotInRedis reports whether a connection's slot is held in Redis.
			slotInRedis := func(id string) bool {
				_, err := client.ZScore(context.Background(), "ratelimit:conn:alice", id).Result()
				return err == nil
			}
			rate := ratelimit.Rate{Limit: 1000, Window: time.Minute}

			var phase atomic.Int32
			var mu sync.Mutex
			var decisions []decision
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						p := phase.Load()
						start := time.Now()
						res, err := limiter.Allow(context.Background(), "k", rate)
						d := decision{phase: p, took: time.Since(start), allowed: res.Allowed, remain: res.Remaining, err: err, started: start}
						if phase.Load() != p {
							d.phase = -1
						}
						mu.Lock()
						decisions = append(decisions, d)
						mu.Unlock()
						time.Sleep(5 * time.Millisecond)
					}
				})
			}
			// A limiter failing closed tells when Redis answers again.
			probe := redislimit.New(client, redislimit.Config{Timeout: faultTimeout})
			recovered := func() bool {
				_, err := probe.Allow(context.Background(), "probe", rate)
				return err == nil
			}
			// waitDecisions waits until n decisions started and ended in
			// phase p and returns them.
			waitDecisions := func(p int32, n int) []decision {
				t.Helper()
				var got []decision
				require.Eventually(t, func() bool {
					mu.Lock()
					defer mu.Unlock()
					got = got[:0]
					for _, d := range decisions {
						if d.phase == p {
							got = append(got, d)
						}
					}
					return len(got) >= n
				}, faultWait, 10*time.Millisecond, "%d decisions in phase %s", n, phaseNames[p])
				return got
			}
			// After recovery the loaded limiter decides in Redis again:
			// no errors, and its count of "k" goes down.
			decidesAgain := func(p int32, since time.Time) {
				t.Helper()
				n, lowest := 0, rate.Limit
				require.Eventually(t, func() bool {
					mu.Lock()
					defer mu.Unlock()
					n = 0
					for _, d := range decisions {
						if d.phase == p && d.started.After(since) {
							n++
						}
					}
					return n >= 8
				}, faultWait, 10*time.Millisecond, "decisions after recovery")
				mu.Lock()
				defer mu.Unlock()
				for _, d := range decisions {
					if d.phase == p && d.started.After(since) {
						assert.NoError(t, d.err)
						lowest = min(lowest, d.remain)
					}
				}
				assert.Less(t, lowest, rate.Limit-5, "decisions made in Redis")
			}
			// connAcquire gives up after faultWait, which fails the test: an
			// acquire must return within its own timeout even when Redis
			// does not answer.
			connAcquire := func(id string) (bool, error) {
				ctx, cancel := context.WithTimeout(context.Background(), faultWait)
				defer cancel()
				return conns.Acquire(ctx, "alice", id, 5)
			}

			waitDecisions(phaseHealthy, 8)
			ok, err := connAcquire("healthy")
			require.NoError(t, err)
			require.True(t, ok)

			// Decisions keep returning while Redis is down: the phase lasts
			// until several were made in it.
			phase.Store(phaseStopped)
			srv.Stop()
			waitDecisions(phaseStopped, 4)
			ok, err = connAcquire("stopped")
			if mode == ratelimit.FailClosed {
				assert.False(t, ok)
				assert.Equal(t, errkind.Unavailable, errkind.Of(err))
			} else {
				assert.NoError(t, err)
				assert.True(t, ok)
			}

			phase.Store(phaseRestarted)
			srv.Start()
			require.Eventually(t, recovered, faultWait, 20*time.Millisecond, "recovery after restart")
			decidesAgain(phaseRestarted, time.Now())
			// The restarted server's script cache was empty: EVALSHA failed
			// with NOSCRIPT and the script was sent again with EVAL.
			info, err := client.Info(context.Background(), "errorstats", "commandstats").Result()
			require.NoError(t, err)
			assert.Contains(t, info, "errorstat_NOSCRIPT:count=")
			assert.Contains(t, info, "cmdstat_eval:calls=")
			ok, err = connAcquire("restarted")
			require.NoError(t, err)
			require.True(t, ok)
			if mode == ratelimit.FailOpen {
				// The connection admitted while Redis was down gets its slot.
				require.Eventually(t, func() bool { return slotInRedis("stopped") }, faultWait, 20*time.Millisecond)
			} else {
				assert.False(t, slotInRedis("stopped"))
			}

			phase.Store(phasePaused)
			srv.Pause()
			waitDecisions(phasePaused, 4)
			ok, err = connAcquire("paused")
			if mode == ratelimit.FailClosed {
				assert.False(t, ok)
				assert.ErrorIs(t, err, ratelimit.ErrUnavailable)
			} else {
				assert.NoError(t, err)
				assert.True(t, ok)
			}

			phase.Store(phaseResumed)
			srv.Resume()
			require.Eventually(t, recovered, faultWait, 20*time.Millisecond, "recovery after resume")
			decidesAgain(phaseResumed, time.Now())
			close(stop)
			wg.Wait()

			counts := map[string]int{}
			var slowest time.Duration
			for _, d := range decisions {
				slowest = max(slowest, d.took)
				switch d.phase {
				case phaseHealthy:
					assert.NoError(t, d.err)
					assert.True(t, d.allowed)
				case phaseStopped, phasePaused:
					if mode == ratelimit.FailClosed {
						require.Error(t, d.err, "phase %s", phaseNames[d.phase])
						assert.Equal(t, errkind.Unavailable, errkind.Of(d.err))
						assert.Equal(t, 2*time.Second, errkind.RetryAfterOf(d.err))
						assert.False(t, d.allowed)
					} else {
						assert.NoError(t, d.err)
						assert.True(t, d.allowed, "fail open admits")
					}
				}
				if d.phase >= 0 {
					counts[phaseNames[d.phase]]++
				}
			}
			t.Logf("decisions per phase %v, slowest %v", counts, slowest)
			assert.Positive(t, counts["stopped"])
			assert.Positive(t, counts["paused"])
			assert.Positive(t, testutil.ToFloat64(backendErrors(reg, mode)), "rate_limit_backend_errors_total{mode=%q}", mode)
			n, err := testutil.GatherAndCount(reg, "rate_limit_redis_duration_seconds")
			require.NoError(t, err)
			assert.Equal(t, 3, n, "latency series of allow, acquire and renew")
		})
	}
}

func backendErrors(reg prometheus.Registerer, mode ratelimit.FailMode) prometheus.Collector {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rate_limit_backend_errors_total",
		Help: "Limiter backend failures, by the fail mode applied.",
	}, []string{"mode"})
	if err := reg.Register(c); err != nil {
		c = err.(prometheus.AlreadyRegisteredError).ExistingCollector.(*prometheus.CounterVec)
	}
	return c.WithLabelValues(mode.String())
}
