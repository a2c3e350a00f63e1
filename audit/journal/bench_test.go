package journal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/journal"
)

// benchEntry is an entry as the Logger hands it to the journal: the
// request of audit's benchmarks, with its id, time and chain links.
func benchEntry() audit.Entry {
	return audit.Entry{
		ID: uuid.Must(uuid.NewV7()), Timestamp: time.Now().UTC().Truncate(time.Microsecond),
		UserID: "0b4f6a9e-2f6b-4b8e-9d53-3e1c7f2f0a11", Username: "ada", UserRoles: []string{"get-authors"},
		ActionType: "WS:GET_AUTHORS", Resource: "1", Outcome: audit.Success, IPAddress: "10.0.0.1", UserAgent: "bench/1.0",
		RequestID: "5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a", RequestData: json.RawMessage(`{"page":1,"per_page":20}`),
		ResponseStatus: audit.Status(0), DurationMS: 1.5,
		Seq: 123456, PrevHash: fmt.Sprintf("%064x", 1), Hash: fmt.Sprintf("%064x", 2),
	}
}

// BenchmarkAppendSync measures Append+Sync throughput: each of the
// goroutines appends `batch` entries one by one, then waits with Sync
// for the last (batch=1: every entry waits for its own Sync, as in the
// Logger's write-ahead mode; 200 goroutines are the example's 50
// connections x 4 requests in flight). An iteration is one round of every
// goroutine; a consumer acknowledges entries as they are written, as the
// shipper does, so the journal stays small.
func BenchmarkAppendSync(b *testing.B) {
	for _, policy := range []journal.Fsync{journal.FsyncNever, journal.FsyncInterval, journal.FsyncBatch} {
		for _, goroutines := range []int{1, 8, 200} {
			for _, batch := range []int{1, 64} {
				if goroutines == 200 && batch > 1 {
					continue // 200 concurrent requests in write-ahead mode: one entry each
				}
				b.Run(fmt.Sprintf("fsync=%s/goroutines=%d/batch=%d", policy, goroutines, batch), func(b *testing.B) {
					benchAppendSync(b, journal.Config{Fsync: policy}, goroutines, batch)
				})
			}
		}
	}
}

func benchAppendSync(b *testing.B, cfg journal.Config, goroutines, batch int) {
	ctx := context.Background()
	j := openBench(b, cfg)
	e := benchEntry()
	stop := make(chan struct{})
	shipped := make(chan error, 1)
	go func() { shipped <- ship(j, stop) }()

	round := func() {
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				var pos uint64
				var err error
				for range batch {
					if pos, err = j.Append(e); err != nil {
						b.Error(err)
						return
					}
				}
				if err := j.Sync(ctx, pos); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if goroutines == 1 {
			var pos uint64
			var err error
			for range batch {
				if pos, err = j.Append(e); err != nil {
					b.Fatal(err)
				}
			}
			if err := j.Sync(ctx, pos); err != nil {
				b.Fatal(err)
			}
		} else {
			round()
		}
		n += goroutines * batch
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(j.Stats().Appended)/float64(max(j.Stats().Writes, 1)), "entries/write")
	close(stop)
	if err := <-shipped; err != nil {
		b.Fatal(err)
	}
}

// ship acknowledges entries in batches until stop is closed.
func ship(j *journal.Journal, stop <-chan struct{}) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
		for j.Len() > 4096 {
			es, err := j.Peek(4096)
			if err != nil {
				return err
			}
			if err := j.Ack(len(es)); err != nil {
				return err
			}
		}
	}
}

// BenchmarkAppend measures Append alone (staging: encoding, copying,
// caching), the cost a request pays when it does not wait for Sync; a
// consumer acknowledges entries meanwhile.
func BenchmarkAppend(b *testing.B) {
	j := openBench(b, journal.Config{Fsync: journal.FsyncNever})
	stop := make(chan struct{})
	shipped := make(chan error, 1)
	go func() { shipped <- ship(j, stop) }()
	defer func() {
		close(stop)
		if err := <-shipped; err != nil {
			b.Error(err)
		}
	}()
	e := benchEntry()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := j.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// openBench opens a journal in a temporary directory, closed when the
// benchmark ends (also when it fails).
func openBench(b *testing.B, cfg journal.Config) *journal.Journal {
	j, err := journal.Open(context.Background(), b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := j.Close(); err != nil {
			b.Error(err)
		}
	})
	return j
}

// BenchmarkShip measures the consumer's side: Peek and Ack of 1000
// entries from a journal that holds them on disk only (after an outage),
// including the state file's fsync per Ack.
func BenchmarkShip(b *testing.B) {
	ctx := context.Background()
	j := openBench(b, journal.Config{Fsync: journal.FsyncNever, CacheBytes: 1})
	e := benchEntry()
	batch := make([]audit.Entry, 1000)
	for i := range batch {
		batch[i] = e
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		pos, err := j.Append(batch...)
		if err == nil {
			err = j.Sync(ctx, pos)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		es, err := j.Peek(len(batch))
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Ack(len(es)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "entries/s")
}
