package auditbun_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// BenchmarkSinkWrite measures the sink alone writing chained batches (the
// chain head moves with each), into PostgreSQL and into a SQLite file
// opened as the example opens it (dbopen: WAL, synchronous=NORMAL). The
// entries are those of a WebSocket message; making them is not timed.
func BenchmarkSinkWrite(b *testing.B) {
	for _, store := range []string{"postgres", "sqlite-file"} {
		for _, n := range []int{1000, 5000} {
			b.Run(fmt.Sprintf("%s/batch=%d", store, n), func(b *testing.B) {
				ctx := context.Background()
				dsn := "sqlite:" + filepath.Join(b.TempDir(), "audit.db")
				if store == "postgres" {
					dsn = testenv.PostgresURL(b)
				}
				db, err := dbopen.Open(ctx, dsn, dbopen.Config{})
				require.NoError(b, err)
				b.Cleanup(func() { _ = db.Close() })
				benchWrite(b, db, n)
			})
		}
	}
}

func benchWrite(b *testing.B, db *bun.DB, n int) {
	ctx := context.Background()
	sink := auditbun.New(db, auditbun.Config{})
	b.Cleanup(func() { _ = sink.Close() })
	require.NoError(b, sink.CreateTable(ctx))
	batch := make([]audit.Entry, n)
	hash := strings.Repeat("ab", 32)
	var seq int64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		now := time.Now().UTC().Truncate(time.Microsecond)
		for i := range batch {
			id, err := uuid.NewV7()
			require.NoError(b, err)
			seq++
			e := benchEntry()
			e.ID, e.Timestamp, e.Outcome = id, now, audit.Success
			e.Seq, e.PrevHash, e.Hash = seq, hash, hash
			batch[i] = e
		}
		b.StartTimer()
		// As the Logger does: each write has a deadline.
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := sink.Write(wctx, batch)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	head, _, err := sink.ChainHead(ctx)
	require.NoError(b, err)
	require.Equal(b, seq, head)
}

// benchEntry is the entry of an audited WebSocket message.
func benchEntry() audit.Entry {
	return audit.Entry{
		UserID: "0b4f6a9e-2f6b-4b8e-9d53-3e1c7f2f0a11", Username: "ada", UserRoles: []string{"get-authors"},
		ActionType: "WS:GET_AUTHORS", Resource: "1", IPAddress: "10.0.0.1", UserAgent: "bench/1.0",
		RequestID: "5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a", RequestData: json.RawMessage(`{"page":1,"per_page":20}`),
		ResponseStatus: audit.Status(0), DurationMS: 1.5,
	}
}
