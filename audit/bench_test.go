package audit_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/stretchr/testify/require"
)

func benchEntry() audit.Entry {
	return audit.Entry{
		UserID: "0b4f6a9e-2f6b-4b8e-9d53-3e1c7f2f0a11", Username: "ada", UserRoles: []string{"get-authors"},
		ActionType: "WS:GET_AUTHORS", Resource: "1", IPAddress: "10.0.0.1", UserAgent: "bench/1.0",
		RequestID: "5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a", RequestData: json.RawMessage(`{"page":1,"per_page":20}`),
		ResponseStatus: audit.Status(0), DurationMS: 1.5,
	}
}

// BenchmarkLoggerPostgres measures sustained throughput into PostgreSQL
// through the Logger with its default batching (100 entries): producers
// block when the buffer is full, so the rate is the writers'.
func BenchmarkLoggerPostgres(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  audit.Config
	}{
		{"default", audit.Config{}},
		{"chain", audit.Config{Chain: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			db := openPostgres(b, testenv.PostgresURL(b))
			sink := auditbun.New(db, auditbun.Config{})
			require.NoError(b, sink.CreateTable(ctx))
			cfg := bc.cfg
			cfg.Sink, cfg.Policy = sink, audit.Block
			l := audit.New(cfg)
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			e := benchEntry()
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if err := l.Log(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			require.NoError(b, l.Close(ctx))
			elapsed := time.Since(start)
			require.NoError(b, <-done)
			st := l.Stats()
			require.Equal(b, st.Produced, st.Written)
			b.ReportMetric(float64(st.Written)/elapsed.Seconds(), "entries/s")
		})
	}
}

// BenchmarkLog measures the cost of Log (redaction, defaults, enqueue)
// with a writer that keeps up.
func BenchmarkLog(b *testing.B) {
	ctx := context.Background()
	l := audit.New(audit.Config{Sink: audit.SinkFunc(func(context.Context, []audit.Entry) error { return nil }), Policy: audit.Block})
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	e := benchEntry()
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Log(ctx, e)
	}
	require.NoError(b, l.Close(ctx))
	require.NoError(b, <-done)
}

// BenchmarkLogDropWriterBlocked measures Log in Drop mode while the writer
// hangs (the buffer is full, every call drops) and reports the p99 latency.
func BenchmarkLogDropWriterBlocked(b *testing.B) {
	ctx := context.Background()
	release := make(chan struct{})
	sink := audit.SinkFunc(func(ctx context.Context, _ []audit.Entry) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return ctx.Err()
	})
	l := audit.New(audit.Config{Sink: sink, Policy: audit.Drop, QueueSize: 1000, BatchTimeout: time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	e := benchEntry()
	lat := make([]time.Duration, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		_ = l.Log(ctx, e)
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
	}
	b.StopTimer()
	close(release)
	require.NoError(b, l.Close(ctx))
	require.NoError(b, <-done)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	st := l.Stats()
	require.Equal(b, st.Produced, st.Written+st.Dropped())
}
