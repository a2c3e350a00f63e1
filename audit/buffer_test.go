package audit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryBuffer(t *testing.T) {
	b := audit.NewMemoryBuffer(3)
	pos, err := b.Append(entry(0), entry(1))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), pos)
	_, err = b.Append(entry(2), entry(3))
	require.ErrorIs(t, err, audit.ErrFull, "both or none")
	assert.Equal(t, 2, b.Len())
	pos, err = b.Append(entry(2))
	require.NoError(t, err)
	assert.Equal(t, uint64(3), pos)

	peek, err := b.Peek(2)
	require.NoError(t, err)
	require.Len(t, peek, 2)
	peek[0].Hash = "changed" // the caller's copy
	again, _ := b.Peek(10)
	require.Len(t, again, 3)
	assert.Empty(t, again[0].Hash)
	assert.Equal(t, "req-2", again[2].RequestID)

	require.NoError(t, b.Ack(2))
	assert.Equal(t, 1, b.Len())
	for i := 3; i < 100; i++ { // space is reused as entries are acknowledged
		_, err := b.Append(entry(i))
		require.NoError(t, err)
		rest, _ := b.Peek(1)
		assert.Equal(t, entry(i-1).RequestID, rest[0].RequestID)
		require.NoError(t, b.Ack(1))
	}
	assert.Equal(t, 1, b.Len())
	require.NoError(t, b.Sync(context.Background(), 99))
	require.NoError(t, b.Close())
}

func TestBatchesGrowWithTheBacklog(t *testing.T) {
	sink := newMemSink()
	gate := make(chan struct{})
	sink.setGate(gate)
	l := audit.New(audit.Config{Sink: sink, BatchSize: 10, MaxBatchSize: 500, BatchTimeout: time.Hour})
	closeFn := run(t, l)
	for i := range 10 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	waitFor(t, 5*time.Second, func() bool { return sink.blocked() == 1 })
	// While the first batch is being written, 1,200 more arrive.
	for i := range 1200 {
		require.NoError(t, l.Log(context.Background(), entry(100+i)))
	}
	close(gate)
	require.NoError(t, closeFn(5*time.Second))
	assert.Equal(t, []int{10, 500, 500, 200}, sink.batches)
	requireConserved(t, l.Stats())
}

func TestWaitPolicyStallsOnce(t *testing.T) {
	sink := newMemSink()
	gate := make(chan struct{})
	sink.setGate(gate)
	l := audit.New(audit.Config{Sink: sink, QueueSize: 2, BatchSize: 2, Policy: audit.Wait, WaitTimeout: 20 * time.Millisecond})
	closeFn := run(t, l)
	for i := range 2 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	err := l.Log(context.Background(), entry(2))
	require.ErrorIs(t, err, audit.ErrDropped)
	assert.Contains(t, err.Error(), string(audit.DropWaitTimeout))
	// The buffer is still full: the next entries do not wait again.
	for i := range 5 {
		err := l.Log(context.Background(), entry(3+i))
		require.ErrorIs(t, err, audit.ErrDropped)
		assert.Contains(t, err.Error(), string(audit.DropQueueFull))
	}
	st := l.Stats()
	assert.Equal(t, uint64(1), st.DroppedBy[audit.DropWaitTimeout])
	assert.Equal(t, uint64(5), st.DroppedBy[audit.DropQueueFull])
	// Room frees: waiting is back.
	close(gate)
	waitFor(t, 5*time.Second, func() bool { return l.Stats().Written == 2 })
	require.NoError(t, l.Log(context.Background(), entry(10)))
	require.NoError(t, l.Log(context.Background(), entry(11)))
	errc := make(chan error, 1)
	go func() { errc <- l.Log(context.Background(), entry(12)) }()
	err = <-errc
	if err != nil { // the writer did not free room within the wait
		assert.Contains(t, err.Error(), string(audit.DropWaitTimeout))
	}
	require.NoError(t, closeFn(5*time.Second))
	requireConserved(t, l.Stats())
}

func TestWriteAheadWithMemoryBufferRefusesWhenFull(t *testing.T) {
	sink := newMemSink()
	sink.setGate(make(chan struct{}))
	l := audit.New(audit.Config{Sink: sink, QueueSize: 1, WriteAhead: true, Policy: audit.Wait, WaitTimeout: time.Millisecond})
	assert.True(t, l.WriteAhead())
	require.NoError(t, l.Log(context.Background(), entry(0)))
	require.ErrorIs(t, l.Log(context.Background(), entry(1)), audit.ErrDropped)
	sink.setGate(nil)
	require.NoError(t, l.Close(context.Background()))
	requireConserved(t, l.Stats())
}

// durableBuffer is a Buffer that keeps its entries over Close and knows a
// chain head, as a journal does; syncErr, when set, fails Sync.
type durableBuffer struct {
	*audit.MemoryBuffer
	seq     int64
	hash    string
	mu      sync.Mutex
	syncErr error
	closed  bool
}

func (b *durableBuffer) ChainHead() (int64, string) { return b.seq, b.hash }

func (b *durableBuffer) Sync(ctx context.Context, pos uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.syncErr
}

func (b *durableBuffer) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

func TestChainBufferLinksAtAppend(t *testing.T) {
	// The head the buffer holds: seq 41.
	prev := entry(41)
	prev.Seq, prev.Hash = 41, audit.ChainHash(audit.Entry{Seq: 41}, nil)
	buf := &durableBuffer{MemoryBuffer: audit.NewMemoryBuffer(100), seq: 41, hash: prev.Hash}
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink, Buffer: buf, Chain: true, BatchTimeout: time.Hour})
	for i := range 5 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	// Chained in the buffer, before any write.
	held, err := buf.Peek(10)
	require.NoError(t, err)
	require.Len(t, held, 5)
	v := &audit.ChainVerifier{AfterSeq: 41, AfterHash: prev.Hash}
	for _, e := range held {
		require.Nil(t, v.Check(e))
	}
	require.NoError(t, l.Close(context.Background()))
	stored := sink.stored()
	require.Len(t, stored, 5)
	assert.Equal(t, held, stored, "written as chained in the buffer")
	seq, hash := l.ChainHead()
	assert.Equal(t, int64(46), seq)
	assert.Equal(t, held[4].Hash, hash)
}

func TestCloseKeepsEntriesOfADurableBuffer(t *testing.T) {
	buf := &durableBuffer{MemoryBuffer: audit.NewMemoryBuffer(100)}
	sink := newMemSink()
	sink.setFail(func([]audit.Entry) error { return errDown })
	var logs bytes.Buffer
	l := audit.New(audit.Config{Sink: sink, Buffer: buf, BatchSize: 1, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	closeFn := run(t, l)
	for i := range 7 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	err := closeFn(50 * time.Millisecond)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	st := l.Stats()
	assert.Zero(t, st.Dropped())
	assert.Equal(t, 7, st.Pending, "kept for the next start")
	assert.Equal(t, 7, buf.Len())
	assert.True(t, buf.closed)
	assert.Equal(t, st.Produced, st.Written+st.Dropped()+uint64(st.Pending))
	assert.Contains(t, logs.String(), `msg="audit log closed"`)
	assert.Contains(t, logs.String(), "kept_in_buffer=7")
}

func TestCloseReportsLossesInOneLine(t *testing.T) {
	sink := newMemSink()
	sink.setFail(func([]audit.Entry) error { return errDown })
	var logs bytes.Buffer
	l := audit.New(audit.Config{Sink: sink, QueueSize: 5, RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	closeFn := run(t, l)
	for i := range 8 {
		_ = l.Log(context.Background(), entry(i))
	}
	require.ErrorIs(t, closeFn(50*time.Millisecond), context.DeadlineExceeded)
	requireConserved(t, l.Stats())
	var line string
	for _, s := range bytes.Split(logs.Bytes(), []byte("\n")) {
		if bytes.Contains(s, []byte("audit log closed")) {
			line = string(s)
		}
	}
	assert.Contains(t, line, "level=ERROR")
	assert.Contains(t, line, "produced=8 written=0 dropped=8 dropped_queue_full=3 dropped_shutdown=5")
}

func TestWriteAheadWaitsForTheBuffer(t *testing.T) {
	buf := &durableBuffer{MemoryBuffer: audit.NewMemoryBuffer(100)}
	l := audit.New(audit.Config{Sink: newMemSink(), Buffer: buf, WriteAhead: true})
	require.NoError(t, l.Log(context.Background(), entry(0)))
	buf.mu.Lock()
	buf.syncErr = errors.New("disk gone")
	buf.mu.Unlock()
	err := l.Log(context.Background(), entry(1))
	require.ErrorIs(t, err, audit.ErrNotDurable)
	assert.Contains(t, err.Error(), "disk gone")
	// Not known durable is not lost: the entry is still held and written.
	assert.Zero(t, l.Stats().Dropped())
	require.NoError(t, l.Close(context.Background()))
	requireConserved(t, l.Stats())
	assert.Equal(t, uint64(2), l.Stats().Written)
}

// leakyBuffer loses its entries: Peek finds none.
type leakyBuffer struct{ *audit.MemoryBuffer }

func (b leakyBuffer) Peek(int) ([]audit.Entry, error) { return nil, nil }
func (b leakyBuffer) Len() int                        { return 0 }

func TestABufferThatLosesEntriesIsCounted(t *testing.T) {
	l := audit.New(audit.Config{Sink: newMemSink(), Buffer: leakyBuffer{audit.NewMemoryBuffer(10)}, RetryMax: time.Millisecond})
	for i := range 3 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	require.NoError(t, l.Close(context.Background()))
	st := l.Stats()
	assert.Equal(t, uint64(3), st.DroppedBy[audit.DropBufferError])
	assert.Equal(t, st.Produced, st.Written+st.Dropped()+uint64(st.Pending))
}
