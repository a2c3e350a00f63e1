// Package audittest holds the conformance suite that every audit.Sink
// passes: batches round-trip, writes are idempotent by id, refused data is
// told apart from failures worth a retry, a ChainSink moves its chain head
// with each write (atomically, and never back), and a Pruner deletes and
// counts old entries. The sinks' own tests run it against their real
// stores; downstream sinks can run it too.
//
// The suite neither sleeps nor times anything.
package audittest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Target is a sink under test, with ways to look into its store.
type Target struct {
	// Sink is the sink under test. When it implements audit.ChainSink or
	// audit.Pruner, the suite checks those contracts too. It is used from
	// several goroutines at once.
	Sink audit.Sink
	// Stored returns every entry the store holds, in any order. Required.
	Stored func(t *testing.T) []audit.Entry
	// Reopen returns a new sink over the same store, as a restarted
	// process would make. Nil skips the restart cases.
	Reopen func(t *testing.T) audit.Sink
	// Rejected returns entries that the store can never hold (for a SQL
	// store, text with a NUL byte, say); Write must refuse them with an
	// error for which Rejected reports true. Nil skips the case: some
	// stores hold anything.
	Rejected func(t *testing.T) []audit.Entry
	// Break makes every write fail until repair is called, the way an
	// outage does (for a SQL store, renaming its table away and back).
	// Nil skips the case.
	Break func(t *testing.T) (repair func())
	// BreakHead makes only the update of a ChainSink's chain head fail
	// until repair is called (for a SQL store, renaming the head's table).
	// Nil skips the case.
	BreakHead func(t *testing.T) (repair func())
}

// Rejected reports whether err tells that the entries can never be
// stored, as the audit Logger reads it: it wraps audit.ErrRejected, or a
// database error of SQLSTATE class 22 (data exception).
func Rejected(err error) bool {
	if errors.Is(err, audit.ErrRejected) {
		return true
	}
	var st interface{ SQLState() string }
	return errors.As(err, &st) && strings.HasPrefix(st.SQLState(), "22")
}

// RunSink runs the conformance suite of audit.Sink (and of audit.ChainSink
// and audit.Pruner when the sink implements them). newTarget is called
// once per subtest and must return a sink over an empty store of its own.
func RunSink(t *testing.T, newTarget func(t *testing.T) Target) {
	t.Run("BatchRoundTrips", func(t *testing.T) {
		tg := newTarget(t)
		batch := Entries(t, 7)
		write(t, tg.Sink, batch)
		requireStored(t, tg, batch)
	})

	t.Run("EmptyBatch", func(t *testing.T) {
		tg := newTarget(t)
		require.NoError(t, tg.Sink.Write(context.Background(), nil))
		require.NoError(t, tg.Sink.Write(context.Background(), []audit.Entry{}))
		assert.Empty(t, tg.Stored(t))
	})

	t.Run("BatchSizes", func(t *testing.T) {
		tg := newTarget(t)
		var all []audit.Entry
		for _, n := range []int{1, 2, 3, 5, 17, 64, 100, 1100} {
			batch := Entries(t, n)
			write(t, tg.Sink, batch)
			all = append(all, batch...)
		}
		requireStored(t, tg, all)
	})

	t.Run("SameIDsStoreNothingTwice", func(t *testing.T) {
		tg := newTarget(t)
		first := Entries(t, 20)
		write(t, tg.Sink, first)
		write(t, tg.Sink, first)
		requireStored(t, tg, first)

		// A batch overlapping stored ids stores the new entries only; a
		// stored entry keeps its first content.
		next := Entries(t, 10)
		overlap := append(slices.Clone(first[15:]), next...)
		overlap[0].Resource = "changed"
		write(t, tg.Sink, overlap)
		requireStored(t, tg, append(slices.Clone(first), next...))

		// Ids repeated within one batch are stored once.
		more := Entries(t, 3)
		write(t, tg.Sink, append(slices.Clone(more), more[1], first[0]))
		requireStored(t, tg, slices.Concat(first, next, more))
	})

	t.Run("ConcurrentWrites", func(t *testing.T) {
		tg := newTarget(t)
		shared := Entries(t, 50)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		own := make([][]audit.Entry, len(errs))
		for i := range errs {
			own[i] = Entries(t, 30)
			batch := slices.Concat(own[i], shared)
			wg.Go(func() { errs[i] = tg.Sink.Write(context.Background(), batch) })
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "writer %d", i)
		}
		requireStored(t, tg, slices.Concat(append(own, shared)...))
	})

	t.Run("CanceledContextIsRetryable", func(t *testing.T) {
		tg := newTarget(t)
		batch := Entries(t, 10)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := tg.Sink.Write(ctx, batch)
		require.Error(t, err)
		assert.False(t, Rejected(err), "a canceled write is not refused data: %v", err)
		write(t, tg.Sink, batch)
		requireStored(t, tg, batch)
	})

	t.Run("RejectedEntries", func(t *testing.T) {
		tg := newTarget(t)
		if tg.Rejected == nil {
			t.Skip("the target has no entries its store refuses")
		}
		good := Entries(t, 3)
		write(t, tg.Sink, good)
		bad := tg.Rejected(t)
		require.NotEmpty(t, bad)
		err := tg.Sink.Write(context.Background(), bad)
		require.Error(t, err)
		assert.True(t, Rejected(err), "refused data wraps audit.ErrRejected or is SQLSTATE class 22: %v", err)
		more := Entries(t, 3)
		write(t, tg.Sink, more)
		requireStored(t, tg, append(good, more...))
	})

	t.Run("FailureIsRetryable", func(t *testing.T) {
		tg := newTarget(t)
		if tg.Break == nil {
			t.Skip("the target cannot break its store")
		}
		before := Entries(t, 3)
		write(t, tg.Sink, before)
		batch := Entries(t, 5)
		repair := tg.Break(t)
		err := tg.Sink.Write(context.Background(), batch)
		repair()
		require.Error(t, err)
		assert.False(t, Rejected(err), "an outage is worth a retry: %v", err)
		write(t, tg.Sink, batch)
		requireStored(t, tg, append(before, batch...))
	})

	runChain(t, newTarget)
	runPrune(t, newTarget)
}

func runChain(t *testing.T, newTarget func(t *testing.T) Target) {
	chainSink := func(t *testing.T) (Target, audit.ChainSink) {
		tg := newTarget(t)
		cs, ok := tg.Sink.(audit.ChainSink)
		if !ok {
			t.Skip("not an audit.ChainSink")
		}
		return tg, cs
	}
	key := []byte("audittest-key")

	t.Run("ChainHeadStartsEmpty", func(t *testing.T) {
		_, cs := chainSink(t)
		requireHead(t, cs, 0, "")
	})

	t.Run("ChainHeadMovesWithEachWrite", func(t *testing.T) {
		tg, cs := chainSink(t)
		var c Chain
		c.Key = key
		first := c.Link(Entries(t, 3))
		write(t, cs, first)
		requireHead(t, cs, 3, first[2].Hash)
		second := c.Link(Entries(t, 7))
		// The head is the entry of the highest sequence number, wherever
		// it is in the batch.
		slices.Reverse(second)
		write(t, cs, second)
		requireHead(t, cs, 10, second[0].Hash)
		// Unchained entries leave the head alone.
		plain := Entries(t, 2)
		write(t, cs, plain)
		requireHead(t, cs, 10, second[0].Hash)
		requireStored(t, tg, slices.Concat(first, second, plain))
		requireChain(t, tg, key, 10)
	})

	t.Run("ChainHeadNeverMovesBack", func(t *testing.T) {
		tg, cs := chainSink(t)
		var c Chain
		c.Key = key
		a := c.Link(Entries(t, 5))
		b := c.Link(Entries(t, 5))
		write(t, cs, a)
		write(t, cs, b)
		requireHead(t, cs, 10, b[4].Hash)
		// A replayed batch (a retry after an ambiguous failure, a journal
		// shipped again) stores nothing and keeps the head.
		write(t, cs, a)
		requireHead(t, cs, 10, b[4].Hash)
		write(t, cs, b[:2])
		requireHead(t, cs, 10, b[4].Hash)
		// A replay that reaches past the head moves it.
		d := c.Link(Entries(t, 2))
		write(t, cs, slices.Concat(b[3:], d))
		requireHead(t, cs, 12, d[1].Hash)
		requireStored(t, tg, slices.Concat(a, b, d))
		requireChain(t, tg, key, 12)
	})

	t.Run("ChainHeadIsAtomicWithTheEntries", func(t *testing.T) {
		tg, cs := chainSink(t)
		if tg.BreakHead == nil {
			t.Skip("the target cannot break its chain head")
		}
		var c Chain
		c.Key = key
		a := c.Link(Entries(t, 4))
		write(t, cs, a)
		b := c.Link(Entries(t, 4))
		repair := tg.BreakHead(t)
		err := cs.Write(context.Background(), b)
		repair()
		require.Error(t, err, "the head could not move: the write fails")
		assert.False(t, Rejected(err), "%v", err)
		requireStored(t, tg, a)
		requireHead(t, cs, 4, a[3].Hash)
		write(t, cs, b)
		requireHead(t, cs, 8, b[3].Hash)
		requireChain(t, tg, key, 8)
	})

	t.Run("FreshSinkContinuesTheChain", func(t *testing.T) {
		tg, cs := chainSink(t)
		if tg.Reopen == nil {
			t.Skip("the target cannot reopen its store")
		}
		var c Chain
		c.Key = key
		a := c.Link(Entries(t, 5))
		write(t, cs, a)
		reopened, ok := tg.Reopen(t).(audit.ChainSink)
		require.True(t, ok, "Reopen returns a ChainSink")
		seq, hash, err := reopened.ChainHead(context.Background())
		require.NoError(t, err)
		require.Equal(t, int64(5), seq)
		require.Equal(t, a[4].Hash, hash)
		next := Chain{Key: key, Seq: seq, Hash: hash}
		b := next.Link(Entries(t, 3))
		write(t, reopened, b)
		requireHead(t, cs, 8, b[2].Hash)
		requireChain(t, tg, key, 8)
	})
}

func runPrune(t *testing.T, newTarget func(t *testing.T) Target) {
	pruner := func(t *testing.T) (Target, audit.Pruner) {
		tg := newTarget(t)
		p, ok := tg.Sink.(audit.Pruner)
		if !ok {
			t.Skip("not an audit.Pruner")
		}
		return tg, p
	}
	// Far from the cut-off: the test does not race the clock.
	ages := func(t *testing.T, days ...int) []audit.Entry {
		now := time.Now().UTC().Truncate(time.Microsecond)
		es := Entries(t, len(days))
		for i, d := range days {
			es[i].Timestamp = now.Add(-time.Duration(d)*24*time.Hour + time.Duration(i)*time.Microsecond)
		}
		return es
	}

	t.Run("PruneDeletesAndCountsOldEntries", func(t *testing.T) {
		tg, p := pruner(t)
		es := ages(t, 30, 10, 5, 1, 0, 0)
		write(t, tg.Sink, es)
		n, err := p.Prune(context.Background(), 3*24*time.Hour)
		require.NoError(t, err)
		assert.Equal(t, int64(3), n)
		requireStored(t, tg, es[3:])
		n, err = p.Prune(context.Background(), 3*24*time.Hour)
		require.NoError(t, err)
		assert.Zero(t, n)
		requireStored(t, tg, es[3:])
	})

	t.Run("PruneKeepsTheChainHead", func(t *testing.T) {
		tg, p := pruner(t)
		cs, ok := tg.Sink.(audit.ChainSink)
		if !ok {
			t.Skip("not an audit.ChainSink")
		}
		c := Chain{Key: []byte("k")}
		es := c.Link(ages(t, 20, 20, 20))
		write(t, cs, es)
		n, err := p.Prune(context.Background(), 24*time.Hour)
		require.NoError(t, err)
		assert.Equal(t, int64(3), n)
		assert.Empty(t, tg.Stored(t))
		requireHead(t, cs, 3, es[2].Hash)
	})
}

// Entries returns n entries with new time-ordered ids and every field set
// to a storable value, as audit.Logger would hand them to a sink
// (timestamps in UTC with microsecond precision, valid UTF-8 without NUL
// bytes), varied so that each kind of value occurs: nil and empty roles,
// no response status, no request data, quotes, non-ASCII text.
func Entries(t testing.TB, n int) []audit.Entry {
	t.Helper()
	base := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]audit.Entry, n)
	for i := range out {
		id, err := uuid.NewV7()
		require.NoError(t, err)
		e := audit.Entry{
			ID:             id,
			Timestamp:      base.Add(time.Duration(i) * time.Microsecond),
			UserID:         fmt.Sprintf("user-%d", i%5),
			Username:       "ada",
			UserRoles:      []string{"get-authors", `a"b\c`, "<é>"},
			ActionType:     "WS:GET_AUTHORS",
			Resource:       fmt.Sprint(i),
			Outcome:        audit.Success,
			IPAddress:      "10.0.0.1",
			UserAgent:      "audittest/1.0 é ü 日本 😀",
			RequestID:      fmt.Sprintf("req-%d", i),
			RequestData:    json.RawMessage(`{"page": 1, "name": "it's", "q": "?TableName $1 -- x"}`),
			ResponseStatus: audit.Status(i % 3),
			ErrorMessage:   "",
			DurationMS:     float64(i) + 0.125,
		}
		switch i % 4 {
		case 1:
			e.UserRoles, e.RequestData, e.ResponseStatus = nil, nil, nil
			e.Outcome, e.ErrorMessage = audit.Error, "it's 'quoted' \\ and \"double\""
			e.UserID, e.Username, e.IPAddress, e.UserAgent = "", "", "", ""
		case 2:
			e.UserRoles, e.DurationMS = []string{}, -0.001
			e.Outcome = audit.PermissionDenied
		case 3:
			e.RequestData = json.RawMessage(`[1,2,{"a":null}]`)
			e.Outcome, e.Resource = audit.RateLimited, ""
		}
		out[i] = e
	}
	return out
}

// Chain links entries into a hash chain as audit.Logger does. The zero
// value starts a chain at sequence 1; Seq and Hash continue an existing
// one.
type Chain struct {
	// Key is the HMAC key of the chain (nil: plain SHA-256).
	Key []byte
	// Seq and Hash are the last link.
	Seq  int64
	Hash string
}

// Link chains es in order after the last link, in place, and returns es.
func (c *Chain) Link(es []audit.Entry) []audit.Entry {
	for i := range es {
		c.Seq++
		es[i].Seq, es[i].PrevHash = c.Seq, c.Hash
		es[i].Hash = audit.ChainHash(es[i], c.Key)
		c.Hash = es[i].Hash
	}
	return es
}

func write(t *testing.T, s audit.Sink, es []audit.Entry) {
	t.Helper()
	require.NoError(t, s.Write(context.Background(), es))
}

// requireStored checks that the store holds exactly want, each once and
// with every field as written.
func requireStored(t *testing.T, tg Target, want []audit.Entry) {
	t.Helper()
	got := tg.Stored(t)
	byID := make(map[uuid.UUID]audit.Entry, len(got))
	for _, e := range got {
		_, dup := byID[e.ID]
		require.False(t, dup, "entry %s stored twice", e.ID)
		byID[e.ID] = e
	}
	wantIDs := make(map[uuid.UUID]bool, len(want))
	for _, w := range want {
		wantIDs[w.ID] = true
	}
	require.Len(t, byID, len(wantIDs), "number of stored entries")
	for _, w := range want {
		g, ok := byID[w.ID]
		require.True(t, ok, "entry %s not stored", w.ID)
		require.Equal(t, w, g, "entry %s round-trips", w.ID)
	}
}

func requireHead(t *testing.T, cs audit.ChainSink, seq int64, hash string) {
	t.Helper()
	gotSeq, gotHash, err := cs.ChainHead(context.Background())
	require.NoError(t, err)
	require.Equal(t, seq, gotSeq, "chain head seq")
	require.Equal(t, hash, gotHash, "chain head hash")
}

// requireChain verifies the stored chained entries from sequence 1 to
// head.
func requireChain(t *testing.T, tg Target, key []byte, head int64) {
	t.Helper()
	var chained []audit.Entry
	for _, e := range tg.Stored(t) {
		if e.Hash != "" {
			chained = append(chained, e)
		}
	}
	slices.SortFunc(chained, func(a, b audit.Entry) int { return int(a.Seq - b.Seq) })
	v := &audit.ChainVerifier{Key: key}
	for _, e := range chained {
		require.Nil(t, v.Check(e))
	}
	seq, _, _ := v.Head()
	require.Equal(t, head, seq)
}
