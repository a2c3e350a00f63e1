package journal_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/journal"
)

// entry returns an entry with every field set, told apart by i.
func entry(i int) audit.Entry {
	return audit.Entry{
		ID:             uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "entry-%d", i)),
		Timestamp:      time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC).Add(time.Duration(i) * time.Microsecond),
		UserID:         "0b4f6a9e-2f6b-4b8e-9d53-3e1c7f2f0a11",
		Username:       "ada",
		UserRoles:      []string{"get-authors", "create-author"},
		ActionType:     "WS:GET_AUTHORS",
		Resource:       "1",
		Outcome:        audit.Error,
		IPAddress:      "10.0.0.1",
		UserAgent:      "test/1.0",
		RequestID:      fmt.Sprintf("req-%d", i),
		RequestData:    json.RawMessage(fmt.Sprintf(`{"page":%d,"per_page":20}`, i)),
		ResponseStatus: audit.Status(400 + i%100),
		ErrorMessage:   "invalid page é",
		DurationMS:     1.5 + float64(i)/1000,
		Seq:            int64(i),
		PrevHash:       fmt.Sprintf("%064x", i-1),
		Hash:           fmt.Sprintf("%064x", i),
	}
}

func entries(from, to int) []audit.Entry {
	var es []audit.Entry
	for i := from; i <= to; i++ {
		es = append(es, entry(i))
	}
	return es
}

func open(t testing.TB, dir string, cfg journal.Config) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), dir, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func appendSync(t testing.TB, j *journal.Journal, es ...audit.Entry) uint64 {
	t.Helper()
	pos, err := j.Append(es...)
	require.NoError(t, err)
	require.NoError(t, j.Sync(context.Background(), pos))
	return pos
}

func peekAll(t testing.TB, j *journal.Journal) []audit.Entry {
	t.Helper()
	es, err := j.Peek(j.Len() + 1)
	require.NoError(t, err)
	return es
}

func segments(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	return names
}

func TestRoundTripEveryField(t *testing.T) {
	full := entry(7)
	variants := []audit.Entry{
		full,
		{}, // zero: zero ID and time, nil slices and status
		{ResponseStatus: audit.Status(0), UserRoles: []string{}, RequestData: json.RawMessage{}},
		{ResponseStatus: audit.Status(-1), UserRoles: []string{""}, RequestData: json.RawMessage("null"), Seq: -5, DurationMS: -0.25},
		{Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), Hash: strings.Repeat("h", 300)},
		{Timestamp: time.Date(1969, 12, 31, 23, 59, 59, 1000, time.UTC), Username: "\x00\xff not utf-8"},
	}
	for _, cache := range []int64{0, 1} { // default cache, and none (read back)
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			dir := t.TempDir()
			j := open(t, dir, journal.Config{CacheBytes: cache})
			pos := appendSync(t, j, variants...)
			require.EqualValues(t, len(variants), pos)
			got := peekAll(t, j)
			require.Equal(t, variants, got)
			require.NoError(t, j.Close())

			j = open(t, dir, journal.Config{CacheBytes: cache})
			require.Equal(t, variants, peekAll(t, j))
			assert.Equal(t, len(variants), j.Stats().Replayed)
		})
	}
}

func TestAppendKeepsItsOwnCopy(t *testing.T) {
	j := open(t, t.TempDir(), journal.Config{})
	e := entry(1)
	appendSync(t, j, e)
	e.RequestData[0] = 'X'
	e.UserRoles[0] = "changed"
	got := peekAll(t, j)
	require.Equal(t, entry(1), got[0])
}

func TestLenPeekAck(t *testing.T) {
	j := open(t, t.TempDir(), journal.Config{})
	require.Equal(t, 0, j.Len())
	es, err := j.Peek(10)
	require.NoError(t, err)
	require.Empty(t, es)
	require.NoError(t, j.Ack(3)) // nothing to acknowledge

	require.EqualValues(t, 3, appendSync(t, j, entries(1, 3)...))
	pos, err := j.Append(entries(4, 10)...) // staged, maybe not written yet
	require.NoError(t, err)
	require.EqualValues(t, 10, pos)
	require.Equal(t, 10, j.Len())

	es, err = j.Peek(4)
	require.NoError(t, err)
	require.Equal(t, entries(1, 4), es)
	es, err = j.Peek(4) // Peek does not remove
	require.NoError(t, err)
	require.Equal(t, entries(1, 4), es)
	es[0].Hash = "mine" // the caller's copy
	es, _ = j.Peek(1)
	require.Equal(t, entry(1), es[0])

	require.NoError(t, j.Ack(4))
	require.Equal(t, 6, j.Len())
	es, err = j.Peek(100)
	require.NoError(t, err)
	require.Equal(t, entries(5, 10), es)
	require.NoError(t, j.Ack(0))
	require.NoError(t, j.Ack(100)) // beyond Len: all
	require.Equal(t, 0, j.Len())
	es, err = j.Peek(100)
	require.NoError(t, err)
	require.Empty(t, es)
	require.NoError(t, j.Sync(context.Background(), pos))

	st := j.Stats()
	assert.Equal(t, 0, st.Entries)
	assert.EqualValues(t, 0, st.Bytes)
	assert.EqualValues(t, 10, st.Appended)
	assert.EqualValues(t, 10, st.Acked)
}

func TestAckAcrossSegmentsDeletesThem(t *testing.T) {
	for _, cache := range []int64{0, 1} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) {
			dir := t.TempDir()
			j := open(t, dir, journal.Config{SegmentBytes: 1000, CacheBytes: cache, Fsync: journal.FsyncNever})
			for i := 1; i <= 40; i++ { // one write per entry: a segment every 2-3
				appendSync(t, j, entry(i))
			}
			n := len(segments(t, dir))
			require.Greater(t, n, 10)
			require.Equal(t, n, j.Stats().Segments)

			es, err := j.Peek(25)
			require.NoError(t, err)
			require.Equal(t, entries(1, 25), es)
			require.NoError(t, j.Ack(25))
			left := len(segments(t, dir))
			require.Less(t, left, n-7)
			require.Equal(t, left, j.Stats().Segments)
			require.Equal(t, entries(26, 40), peekAll(t, j))

			require.NoError(t, j.Ack(15))
			require.Len(t, segments(t, dir), 1) // the active one stays
			require.NoError(t, j.Close())

			j = open(t, dir, journal.Config{SegmentBytes: 1000, CacheBytes: cache})
			require.Equal(t, 0, j.Len())
			require.EqualValues(t, 41, appendSync(t, j, entry(41)))
			require.Equal(t, entries(41, 41), peekAll(t, j))
		})
	}
}

func TestReopenReplaysUnacknowledged(t *testing.T) {
	dir := t.TempDir()
	cfg := journal.Config{SegmentBytes: 4000}
	j := open(t, dir, cfg)
	appendSync(t, j, entries(1, 30)...)
	for i := 31; i <= 100; i++ {
		_, err := j.Append(entry(i))
		require.NoError(t, err)
	}
	es, err := j.Peek(40)
	require.NoError(t, err)
	require.Equal(t, entries(1, 40), es)
	require.NoError(t, j.Ack(40))
	require.NoError(t, j.Close()) // writes what is staged

	j = open(t, dir, cfg)
	require.Equal(t, 60, j.Len())
	require.Equal(t, entries(41, 100), peekAll(t, j))
	require.Equal(t, 60, j.Stats().Replayed)
	require.EqualValues(t, 101, appendSync(t, j, entry(101)))
	require.NoError(t, j.Ack(10))
	require.NoError(t, j.Close())

	j = open(t, dir, cfg)
	require.Equal(t, entries(51, 101), peekAll(t, j))
}

func TestFullAndRecovery(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, journal.Config{MaxBytes: 4000})
	var n int
	for ; ; n++ {
		_, err := j.Append(entry(n + 1))
		if err != nil {
			require.ErrorIs(t, err, audit.ErrFull)
			break
		}
	}
	require.Greater(t, n, 5)
	require.Equal(t, n, j.Len())
	st := j.Stats()
	require.LessOrEqual(t, st.Bytes, int64(4000))
	require.EqualValues(t, 1, st.Refused)

	_, err := j.Append(entry(n+1), entry(n+2)) // all or nothing
	require.ErrorIs(t, err, audit.ErrFull)
	require.Equal(t, n, j.Len())

	require.NoError(t, j.Ack(2))
	pos, err := j.Append(entry(n + 1))
	require.NoError(t, err)
	require.EqualValues(t, n+1, pos)
	require.NoError(t, j.Sync(context.Background(), pos))
	require.NoError(t, j.Close())

	// The bound holds across a restart.
	j = open(t, dir, journal.Config{MaxBytes: 4000})
	require.Equal(t, n-1, j.Len())
	_, err = j.Append(entry(n+2), entry(n+3))
	require.ErrorIs(t, err, audit.ErrFull)
	require.NoError(t, j.Ack(n-1))
	require.Equal(t, int64(0), j.Stats().Bytes)
	_, err = j.Append(entries(n+2, n+4)...)
	require.NoError(t, err)
}

func TestChainHead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	calls := 0
	head := func(context.Context) (int64, string, error) { calls++; return 41, "sinkhead", nil }
	failing := func(context.Context) (int64, string, error) { return 0, "", errors.New("sink down") }

	_, err := journal.Open(ctx, dir, journal.Config{Head: failing})
	require.ErrorContains(t, err, "sink down")

	j := open(t, dir, journal.Config{Head: head})
	seq, hash := j.ChainHead()
	require.Equal(t, int64(41), seq)
	require.Equal(t, "sinkhead", hash)
	// Unchained entries do not move the head.
	appendSync(t, j, audit.Entry{Username: "x"})
	seq, _ = j.ChainHead()
	require.Equal(t, int64(41), seq)
	require.NoError(t, j.Ack(1))
	require.NoError(t, j.Close())

	// Never held a chained entry: the sink is asked again.
	j = open(t, dir, journal.Config{Head: head})
	require.Equal(t, 2, calls)
	appendSync(t, j, entries(42, 44)...)
	_, err = j.Append(audit.Entry{Username: "unchained"})
	require.NoError(t, err)
	seq, hash = j.ChainHead()
	require.Equal(t, int64(44), seq)
	require.Equal(t, entry(44).Hash, hash)
	require.NoError(t, j.Close())

	// From the last chained record.
	j = open(t, dir, journal.Config{Head: failing})
	seq, hash = j.ChainHead()
	require.Equal(t, int64(44), seq)
	require.Equal(t, entry(44).Hash, hash)
	// Everything shipped: from the state file.
	require.NoError(t, j.Ack(2))
	require.NoError(t, j.Close())
	j = open(t, dir, journal.Config{Head: failing})
	seq, _ = j.ChainHead()
	require.Equal(t, int64(44), seq)
	require.NoError(t, j.Ack(10))
	require.NoError(t, j.Close())
	j = open(t, dir, journal.Config{Head: failing})
	seq, hash = j.ChainHead()
	require.Equal(t, int64(44), seq)
	require.Equal(t, entry(44).Hash, hash)
	require.Equal(t, 2, calls)
}

// TestTornTail cuts the last record at every byte: Open keeps every
// earlier record, reports the torn bytes, and the journal goes on.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, journal.Config{})
	appendSync(t, j, entries(1, 5)...)
	require.NoError(t, j.Close())
	segs := segments(t, dir)
	require.Len(t, segs, 1)
	data, err := os.ReadFile(segs[0])
	require.NoError(t, err)

	// The size of the last record: a journal holding only it.
	one := t.TempDir()
	j1 := open(t, one, journal.Config{})
	appendSync(t, j1, entry(5))
	require.NoError(t, j1.Close())
	oneData, err := os.ReadFile(segments(t, one)[0])
	require.NoError(t, err)
	last := len(data) - (len(oneData) - journal.SegmentHeaderSize)

	for cut := last; cut < len(data); cut++ {
		require.NoError(t, os.WriteFile(segs[0], data[:cut], 0o600))
		j, err := journal.Open(context.Background(), dir, journal.Config{})
		require.NoError(t, err, "cut at %d", cut)
		require.Equal(t, 4, j.Len(), "cut at %d", cut)
		st := j.Stats()
		require.EqualValues(t, cut-last, st.TornBytes, "cut at %d", cut)
		require.Equal(t, min(cut-last, 1), st.TornRecords)
		es := peekAll(t, j)
		require.Equal(t, entries(1, 4), es, "cut at %d", cut)
		require.NoError(t, j.Close())
	}

	// Zeros after the last record (a file extended, its data never
	// written), then the journal goes on after the truncation.
	require.NoError(t, os.WriteFile(segs[0], append(data[:len(data):len(data)], make([]byte, 300)...), 0o600))
	j = open(t, dir, journal.Config{})
	require.Equal(t, 5, j.Len())
	require.EqualValues(t, 300, j.Stats().TornBytes)
	appendSync(t, j, entry(6))
	require.NoError(t, j.Close())
	j = open(t, dir, journal.Config{})
	require.Equal(t, entries(1, 6), peekAll(t, j))
	require.Zero(t, j.Stats().TornBytes)
}

func TestTornSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, journal.Config{SegmentBytes: 1})
	appendSync(t, j, entry(1))
	appendSync(t, j, entry(2)) // second segment
	require.NoError(t, j.Close())
	segs := segments(t, dir)
	require.Len(t, segs, 2)
	require.NoError(t, os.WriteFile(segs[1], []byte("PRJL\x01"), 0o600)) // header cut short
	j = open(t, dir, journal.Config{SegmentBytes: 1})
	require.Equal(t, entries(1, 1), peekAll(t, j))
	require.EqualValues(t, 5, j.Stats().TornBytes)
	require.EqualValues(t, 2, appendSync(t, j, entry(2)))
	require.NoError(t, j.Close())
	j = open(t, dir, journal.Config{})
	require.Equal(t, entries(1, 2), peekAll(t, j))
}

// TestCorruptMiddle: damage before the tail is an error naming the file
// and offset, never a silent skip.
func TestCorruptMiddle(t *testing.T) {
	setup := func(t *testing.T, segBytes int64) (string, []string) {
		dir := t.TempDir()
		j := open(t, dir, journal.Config{SegmentBytes: segBytes})
		for i := 1; i <= 6; i++ {
			appendSync(t, j, entry(i))
		}
		require.NoError(t, j.Close())
		return dir, segments(t, dir)
	}
	flip := func(t *testing.T, path string, off int) {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		data[off] ^= 0x20
		require.NoError(t, os.WriteFile(path, data, 0o600))
	}
	recordSize := func(t *testing.T, path string, n int) int {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return int(fi.Size()-journal.SegmentHeaderSize) / n
	}

	t.Run("payload", func(t *testing.T) {
		dir, segs := setup(t, 0)
		size := recordSize(t, segs[0], 6) // equal sizes: i < 10
		off := journal.SegmentHeaderSize + 2*size + journal.FrameHeaderSize + 30
		flip(t, segs[0], off)
		_, err := journal.Open(context.Background(), dir, journal.Config{})
		require.ErrorIs(t, err, journal.ErrCorrupt)
		require.ErrorContains(t, err, filepath.Base(segs[0]))
		require.ErrorContains(t, err, fmt.Sprintf("offset %d", journal.SegmentHeaderSize+2*size))
		// The lock was released.
		_, err = journal.Open(context.Background(), dir, journal.Config{})
		require.ErrorIs(t, err, journal.ErrCorrupt)
	})
	t.Run("length", func(t *testing.T) {
		dir, segs := setup(t, 0)
		size := recordSize(t, segs[0], 6)
		flip(t, segs[0], journal.SegmentHeaderSize+size+1) // record 2 claims 8 KiB more
		_, err := journal.Open(context.Background(), dir, journal.Config{})
		require.ErrorIs(t, err, journal.ErrCorrupt)
		require.ErrorContains(t, err, filepath.Base(segs[0]))
	})
	t.Run("tail of an older segment", func(t *testing.T) {
		dir, segs := setup(t, 1) // one record per segment
		require.Len(t, segs, 6)
		fi, err := os.Stat(segs[2])
		require.NoError(t, err)
		flip(t, segs[2], int(fi.Size())-1)
		_, err = journal.Open(context.Background(), dir, journal.Config{})
		require.ErrorIs(t, err, journal.ErrCorrupt)
		require.ErrorContains(t, err, filepath.Base(segs[2]))
	})
	t.Run("segment header", func(t *testing.T) {
		dir, segs := setup(t, 1)
		flip(t, segs[3], 9)
		_, err := journal.Open(context.Background(), dir, journal.Config{})
		require.ErrorIs(t, err, journal.ErrCorrupt)
		require.ErrorContains(t, err, filepath.Base(segs[3]))
	})
	t.Run("missing segment", func(t *testing.T) {
		dir, segs := setup(t, 1)
		require.NoError(t, os.Remove(segs[3]))
		_, err := journal.Open(context.Background(), dir, journal.Config{})
		require.ErrorIs(t, err, journal.ErrCorrupt)
		require.ErrorContains(t, err, filepath.Base(segs[4]))
	})
	t.Run("state file", func(t *testing.T) {
		dir, _ := setup(t, 0)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "ack"), []byte("PRJA garbage"), 0o600))
		_, err := journal.Open(context.Background(), dir, journal.Config{})
		require.ErrorIs(t, err, journal.ErrCorrupt)
		require.ErrorContains(t, err, "ack")
	})
}

func TestConcurrentAppendSync(t *testing.T) {
	for _, policy := range []journal.Fsync{journal.FsyncNever, journal.FsyncBatch} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := journal.Config{Fsync: policy, SegmentBytes: 64 << 10, CacheBytes: 32 << 10}
			j := open(t, dir, cfg)
			const workers, per = 8, 150
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for k := range per {
						e := audit.Entry{Username: fmt.Sprint(w), Seq: int64(k), RequestData: json.RawMessage(fmt.Sprintf(`{"w":%d,"k":%d}`, w, k))}
						pos, err := j.Append(e)
						if !assert.NoError(t, err) {
							return
						}
						if k%3 == 0 {
							assert.NoError(t, j.Sync(context.Background(), pos))
						}
					}
				})
			}
			// A consumer ships meanwhile.
			var shipped []audit.Entry
			for len(shipped) < workers*per {
				es, err := j.Peek(64)
				require.NoError(t, err)
				shipped = append(shipped, es...)
				require.NoError(t, j.Ack(len(es)))
			}
			wg.Wait()
			check := func(es []audit.Entry) {
				next := make([]int64, workers)
				for _, e := range es {
					var w int
					_, err := fmt.Sscan(e.Username, &w)
					require.NoError(t, err)
					require.Equal(t, next[w], e.Seq)
					require.JSONEq(t, fmt.Sprintf(`{"w":%d,"k":%d}`, w, e.Seq), string(e.RequestData))
					next[w]++
				}
				for _, n := range next {
					require.EqualValues(t, per, n)
				}
			}
			check(shipped)
			require.Equal(t, 0, j.Len())
			require.NoError(t, j.Close())
			j = open(t, dir, cfg)
			require.Equal(t, 0, j.Len())
			require.LessOrEqual(t, j.Stats().Segments, 1)
		})
	}
}

func TestSyncFailsAfterWriteFailure(t *testing.T) {
	dir := t.TempDir()
	cfg, fail := journal.WithFaults(journal.Config{})
	j, err := journal.Open(context.Background(), dir, cfg)
	require.NoError(t, err)
	appendSync(t, j, entries(1, 3)...)

	injected := errors.New("device full")
	fail(injected)
	pos, err := j.Append(entry(4))
	require.NoError(t, err) // staged: no I/O yet
	err = j.Sync(context.Background(), pos)
	require.ErrorIs(t, err, injected)
	_, err = j.Append(entry(5))
	require.ErrorIs(t, err, injected)
	require.ErrorIs(t, j.Sync(context.Background(), pos), injected)
	// What is in memory can still be shipped.
	require.Equal(t, entries(1, 4), peekAll(t, j))
	require.ErrorIs(t, j.Close(), injected)

	j = open(t, dir, journal.Config{})
	require.Equal(t, entries(1, 3), peekAll(t, j))
}

func TestSyncContext(t *testing.T) {
	cfg, fail := journal.WithFaults(journal.Config{})
	_ = fail
	j := open(t, t.TempDir(), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pos, err := j.Append(entry(1))
	require.NoError(t, err)
	if err := j.Sync(ctx, pos); err != nil { // written already, or canceled
		require.ErrorIs(t, err, context.Canceled)
	}
	require.NoError(t, j.Sync(context.Background(), pos+100)) // beyond: the last
}

func TestPolicies(t *testing.T) {
	for _, policy := range []journal.Fsync{journal.FsyncBatch, journal.FsyncInterval, journal.FsyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			j := open(t, dir, journal.Config{Fsync: policy, SyncInterval: time.Millisecond})
			appendSync(t, j, entries(1, 10)...)
			st := j.Stats()
			require.Zero(t, st.Staged)
			require.GreaterOrEqual(t, st.Writes, uint64(1))
			switch policy {
			case journal.FsyncBatch:
				require.GreaterOrEqual(t, st.Fsyncs, st.Writes)
			case journal.FsyncInterval:
				require.Eventually(t, func() bool { return j.Stats().Fsyncs > 0 }, time.Minute, time.Millisecond)
			case journal.FsyncNever:
				require.Zero(t, st.Fsyncs)
			}
			require.NoError(t, j.Close())
			j = open(t, dir, journal.Config{Fsync: policy})
			require.Equal(t, entries(1, 10), peekAll(t, j))
		})
	}
	p, err := journal.ParseFsync("interval")
	require.NoError(t, err)
	require.Equal(t, journal.FsyncInterval, p)
	_, err = journal.ParseFsync("sometimes")
	require.Error(t, err)
}

func TestLockedAndClosed(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, journal.Config{})
	_, err := journal.Open(context.Background(), dir, journal.Config{})
	require.ErrorIs(t, err, journal.ErrLocked)
	pos := appendSync(t, j, entry(1))
	require.NoError(t, j.Close())
	require.NoError(t, j.Close())
	_, err = j.Append(entry(2))
	require.ErrorIs(t, err, journal.ErrClosed)
	require.ErrorIs(t, j.Ack(1), journal.ErrClosed)
	require.NoError(t, j.Sync(context.Background(), pos))

	j2 := open(t, dir, journal.Config{})
	require.Equal(t, 1, j2.Len())
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []journal.Config{{Fsync: 7}, {MaxBytes: -1}, {SyncInterval: -1}} {
		_, err := journal.Open(context.Background(), t.TempDir(), cfg)
		require.Error(t, err)
	}
}

// TestPeekReadsBackAfterOutage: while the consumer is away the journal
// grows past its cache; the consumer then reads the oldest entries back
// from the files and joins the cache.
func TestPeekReadsBackAfterOutage(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, journal.Config{CacheBytes: 8 << 10, SegmentBytes: 16 << 10, Fsync: journal.FsyncNever})
	for i := 1; i <= 300; i += 10 {
		appendSync(t, j, entries(i, i+9)...)
	}
	require.Less(t, j.Stats().Cached, 100)
	var got []audit.Entry
	for j.Len() > 0 {
		es, err := j.Peek(37)
		require.NoError(t, err)
		got = append(got, es...)
		require.NoError(t, j.Ack(len(es)))
	}
	require.Equal(t, entries(1, 300), got)
	st := j.Stats()
	require.Greater(t, st.DiskReads, uint64(150))
	require.Less(t, st.DiskReads, uint64(300))
	require.Equal(t, 1, st.Segments)
}

// TestAckAheadOfWrites: the consumer may ship and acknowledge entries
// still staged; when the process dies before they are written, the state
// file is ahead of the files, and the journal goes on from there.
func TestAckAheadOfWrites(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir, journal.Config{})
	appendSync(t, j, entries(1, 10)...)
	require.NoError(t, j.Ack(10))
	require.NoError(t, j.Close())
	// Cut the segment back to 5 records: as if 6-10 were never written.
	seg := segments(t, dir)[0]
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	size := (len(data) - journal.SegmentHeaderSize) / 10
	require.NoError(t, os.WriteFile(seg, data[:journal.SegmentHeaderSize+5*size], 0o600))

	j = open(t, dir, journal.Config{})
	require.Equal(t, 0, j.Len())
	require.EqualValues(t, 11, appendSync(t, j, entry(11)))
	seq, _ := j.ChainHead()
	require.Equal(t, int64(11), seq)
	require.NoError(t, j.Close())
	j = open(t, dir, journal.Config{})
	require.Equal(t, entries(11, 11), peekAll(t, j))
	require.NoError(t, j.Ack(1))
	require.Len(t, segments(t, dir), 1)
}

// TestAckWithoutPeekFromFiles: Ack of entries that are only in the files
// reads them back for their offsets and chain links.
func TestAckWithoutPeekFromFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := journal.Config{CacheBytes: 1, SegmentBytes: 8 << 10, Fsync: journal.FsyncNever}
	j := open(t, dir, cfg)
	for i := 1; i <= 100; i += 5 {
		appendSync(t, j, entries(i, i+4)...)
	}
	require.NoError(t, j.Close())
	j = open(t, dir, cfg)
	require.NoError(t, j.Ack(50))
	require.Equal(t, entries(51, 100), peekAll(t, j))
	require.NoError(t, j.Ack(50))
	require.Equal(t, int64(0), j.Stats().Bytes)
	require.NoError(t, j.Close())
	j = open(t, dir, journal.Config{Head: func(context.Context) (int64, string, error) {
		return 0, "", errors.New("not asked")
	}})
	seq, hash := j.ChainHead()
	require.Equal(t, int64(100), seq)
	require.Equal(t, entry(100).Hash, hash)
	require.Equal(t, 0, j.Len())
}

func TestPeekedEntriesAreTheCallers(t *testing.T) {
	for _, cache := range []int64{0, 1} {
		j := open(t, t.TempDir(), journal.Config{CacheBytes: cache, Fsync: journal.FsyncNever})
		for i := 1; i <= 40; i++ {
			appendSync(t, j, entry(i))
		}
		es, err := j.Peek(40)
		require.NoError(t, err)
		for i := range es {
			es[i].RequestData[0] = 'X'
			es[i].UserRoles[0] = "changed"
		}
		require.Equal(t, entries(1, 40), peekAll(t, j))
	}
}
