package repository_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/command"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository"
)

// TestPostgresRestart restarts a private PostgreSQL (pg_ctl restart -m
// fast) in the middle of a stream of transactional commands: commands in
// flight fail with ErrUnavailable (service_unavailable, with a retry hint),
// the pool recovers by itself, and later commands succeed.
func TestPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	srv := testenv.StartPostgres(t)
	db := openMigrated(t, srv.URL("postgres"))
	r := newAuthors(t, db)
	create := command.InTx(repository.NewTransactor(db, nil),
		command.Func[string, int64](func(ctx context.Context, name string) (int64, error) {
			a := &Author{Name: name}
			if err := r.Create(ctx, a); err != nil {
				return 0, err
			}
			if _, err := r.Get(ctx, a.ID); err != nil {
				return 0, err
			}
			return a.ID, nil
		}))

	var (
		mu       sync.Mutex
		outcomes []outcome
		seq      atomic.Int64
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				start := time.Now()
				id, err := create.Execute(ctx, fmt.Sprintf("writer-%06d", seq.Add(1)))
				cancel()
				mu.Lock()
				outcomes = append(outcomes, outcome{start, time.Now(), id, err})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}

	time.Sleep(300 * time.Millisecond)
	restartAt := time.Now()
	srv.Restart("fast")
	upAt := time.Now()

	// Run on until the stream has succeeded steadily for a second after
	// the restart, or give up after 20 s.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		ok := steadySince(outcomes, upAt) >= time.Second
		mu.Unlock()
		if ok {
			break
		}
	}
	close(stop)
	wg.Wait()

	var failures, successes []outcome
	var firstFail, lastFail time.Time
	for _, o := range outcomes {
		if o.err == nil {
			successes = append(successes, o)
			continue
		}
		failures = append(failures, o)
		if firstFail.IsZero() {
			firstFail = o.end
		}
		if o.end.After(lastFail) {
			lastFail = o.end
		}
	}
	require.NotEmpty(t, failures, "the restart interrupted commands")
	messages := map[string]bool{}
	for _, f := range failures {
		assert.NotErrorIs(t, f.err, repository.ErrNotFound, "a lost connection is not 'not found'")
		assert.NotErrorIs(t, f.err, repository.ErrConflict, "a lost connection is not a conflict")
		assert.ErrorIs(t, f.err, repository.ErrUnavailable, "a lost connection is service_unavailable: %v", f.err)
		assert.Equal(t, errkind.Unavailable, errkind.Of(f.err))
		assert.NotEmpty(t, f.err.Error())
		messages[f.err.Error()] = true
	}
	shown := 0
	for m := range messages {
		if shown++; shown > 6 {
			break
		}
		t.Logf("failure: %s", m)
	}

	// The pool recovered by itself: every command that started after the
	// first success following the restart succeeded.
	var recovered time.Time
	for _, o := range successes {
		if o.start.After(upAt) && (recovered.IsZero() || o.end.Before(recovered)) {
			recovered = o.end
		}
	}
	require.False(t, recovered.IsZero(), "no command succeeded after the restart")
	late := 0
	for _, o := range outcomes {
		if o.start.After(recovered) {
			late++
			assert.NoError(t, o.err, "command started %v after recovery", o.start.Sub(recovered))
		}
	}
	assert.Greater(t, late, 20, "the stream went on after recovery")
	t.Logf("%d commands: %d ok, %d failed; restart took %v; failures from %v to %v after the restart began; first success %v after the server was back (recovery %v after the restart began)",
		len(outcomes), len(successes), len(failures), upAt.Sub(restartAt),
		firstFail.Sub(restartAt).Round(time.Millisecond), lastFail.Sub(restartAt).Round(time.Millisecond),
		recovered.Sub(upAt).Round(time.Millisecond), recovered.Sub(restartAt).Round(time.Millisecond))

	// Every command reported as successful was committed.
	ctx := context.Background()
	for _, o := range successes {
		_, err := r.Get(ctx, o.id)
		require.NoError(t, err, "committed id %d", o.id)
	}
}

// outcome is one command of the fault test's stream.
type outcome struct {
	start, end time.Time
	id         int64
	err        error
}

// steadySince returns how long the stream has run without a failure since
// its first success that started after since (0 when there is none yet or a
// failure came later).
func steadySince(outcomes []outcome, since time.Time) time.Duration {
	var first, last time.Time
	for _, o := range outcomes {
		if !o.start.After(since) {
			continue
		}
		if o.err != nil {
			first = time.Time{}
			continue
		}
		if first.IsZero() {
			first = o.end
		}
		last = o.end
	}
	if first.IsZero() {
		return 0
	}
	return last.Sub(first)
}
