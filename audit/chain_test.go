package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chained logs n entries through a chaining Logger and returns them in
// sequence order.
func chained(t *testing.T, n int, key []byte) []audit.Entry {
	t.Helper()
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink, Chain: true, ChainKey: key, BatchSize: 4})
	for i := range n {
		e := entry(i)
		e.ResponseStatus = audit.Status(i % 5)
		e.DurationMS = float64(i) / 3
		e.UserRoles = []string{"a", "b"}
		require.NoError(t, l.Log(context.Background(), e))
	}
	require.NoError(t, l.Close(context.Background()))
	rows := sink.stored()
	require.Len(t, rows, n)
	seq, head := l.ChainHead()
	assert.Equal(t, int64(n), seq)
	assert.Equal(t, rows[n-1].Hash, head)
	return rows
}

func verify(rows []audit.Entry, key []byte) *audit.Break {
	v := &audit.ChainVerifier{Key: key}
	for _, e := range rows {
		if b := v.Check(e); b != nil {
			return b
		}
	}
	return nil
}

func TestChainDetectsTampering(t *testing.T) {
	key := []byte("k")
	tests := []struct {
		name    string
		tamper  func(rows []audit.Entry) []audit.Entry
		wantSeq int64
	}{
		{"untouched", func(r []audit.Entry) []audit.Entry { return r }, 0},
		{"edit a field", func(r []audit.Entry) []audit.Entry { r[3].Outcome = audit.Success; r[3].Resource = "other"; return r }, 4},
		{"edit the roles", func(r []audit.Entry) []audit.Entry { r[5].UserRoles = []string{"admin"}; return r }, 6},
		{"edit the timestamp", func(r []audit.Entry) []audit.Entry { r[0].Timestamp = r[0].Timestamp.Add(time.Second); return r }, 1},
		{"edit and rehash without the key", func(r []audit.Entry) []audit.Entry {
			r[2].Username = "mallory"
			r[2].Hash = audit.ChainHash(r[2], nil)
			return r
		}, 3},
		{"delete a middle row", func(r []audit.Entry) []audit.Entry { return append(r[:4:4], r[5:]...) }, 5},
		{"delete the first row", func(r []audit.Entry) []audit.Entry { return r[1:] }, 1},
		{"reorder two rows", func(r []audit.Entry) []audit.Entry { r[6], r[7] = r[7], r[6]; return r }, 7},
		{"renumber swapped rows", func(r []audit.Entry) []audit.Entry {
			r[6], r[7] = r[7], r[6]
			r[6].Seq, r[7].Seq = 7, 8
			return r
		}, 7},
		{"insert a row", func(r []audit.Entry) []audit.Entry {
			fake := r[2]
			fake.Resource = "forged"
			return append(r[:3:3], append([]audit.Entry{fake}, r[3:]...)...)
		}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := tt.tamper(chained(t, 10, key))
			b := verify(rows, key)
			if tt.wantSeq == 0 {
				require.Nil(t, b)
				return
			}
			require.NotNil(t, b)
			assert.Equal(t, tt.wantSeq, b.Seq, b.Error())
		})
	}
}

func TestChainWithoutKeyAndWrongKey(t *testing.T) {
	rows := chained(t, 5, nil)
	require.Nil(t, verify(rows, nil))
	require.NotNil(t, verify(rows, []byte("other")))
}

func TestChainVerifierAfterPrunedLink(t *testing.T) {
	rows := chained(t, 8, nil)
	v := &audit.ChainVerifier{AfterSeq: rows[2].Seq, AfterHash: rows[2].Hash}
	for _, e := range rows[3:] {
		require.Nil(t, v.Check(e))
	}
	seq, head, n := v.Head()
	assert.Equal(t, int64(8), seq)
	assert.Equal(t, rows[7].Hash, head)
	assert.Equal(t, 5, n)
}

// chainSink is a memSink that stores a chain head and fails to read it a
// few times.
type chainSink struct {
	*memSink
	failures int
	seq      int64
	head     string
}

func (s *chainSink) ChainHead(context.Context) (int64, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return 0, "", errDown
	}
	return s.seq, s.head, nil
}

func TestChainContinuesFromTheSinkHeadAfterItCanBeRead(t *testing.T) {
	prev := chained(t, 3, nil)
	sink := &chainSink{memSink: newMemSink(), failures: 3, seq: prev[2].Seq, head: prev[2].Hash}
	l := audit.New(audit.Config{Sink: sink, Chain: true, RetryMin: time.Millisecond, BatchTimeout: time.Millisecond})
	closeFn := run(t, l)
	for i := range 5 {
		require.NoError(t, l.Log(context.Background(), entry(i)))
	}
	require.NoError(t, closeFn(5*time.Second))
	st := l.Stats()
	requireConserved(t, st)
	assert.GreaterOrEqual(t, st.WriteErrors, uint64(3))
	rows := append(prev, sink.stored()...)
	require.Nil(t, verify(rows, nil))
	seq, _ := l.ChainHead()
	assert.Equal(t, int64(8), seq)
}
