package audittest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/audittest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// store is an in-memory store: the reference that the suite is checked
// against.
type store struct {
	mu        sync.Mutex
	rows      map[uuid.UUID]audit.Entry
	seq       int64
	hash      string
	down      bool
	headDown  bool
	rejectNUL bool
}

// sink is one sink over a store.
type sink struct{ st *store }

func (s sink) Write(ctx context.Context, es []audit.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.down {
		return errors.New("store down")
	}
	var last *audit.Entry
	for i := range es {
		if st.rejectNUL && strings.ContainsRune(es[i].UserAgent, 0) {
			return fmt.Errorf("%w: NUL byte", audit.ErrRejected)
		}
		if es[i].Hash != "" && (last == nil || es[i].Seq > last.Seq) {
			last = &es[i]
		}
	}
	if last != nil && st.headDown {
		return errors.New("head down")
	}
	for _, e := range es {
		if _, ok := st.rows[e.ID]; !ok {
			e.UserRoles = slices.Clone(e.UserRoles)
			st.rows[e.ID] = e
		}
	}
	if last != nil && last.Seq > st.seq {
		st.seq, st.hash = last.Seq, last.Hash
	}
	return nil
}

func (s sink) ChainHead(context.Context) (int64, string, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return s.st.seq, s.st.hash, nil
}

func (s sink) Prune(_ context.Context, olderThan time.Duration) (int64, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	cutoff := time.Now().Add(-olderThan)
	var n int64
	for id, e := range s.st.rows {
		if e.Timestamp.Before(cutoff) {
			delete(s.st.rows, id)
			n++
		}
	}
	return n, nil
}

func (st *store) set(field *bool, v bool) {
	st.mu.Lock()
	*field = v
	st.mu.Unlock()
}

func TestRunSinkMemory(t *testing.T) {
	audittest.RunSink(t, func(t *testing.T) audittest.Target {
		st := &store{rows: map[uuid.UUID]audit.Entry{}, rejectNUL: true}
		return audittest.Target{
			Sink: sink{st},
			Stored: func(*testing.T) []audit.Entry {
				st.mu.Lock()
				defer st.mu.Unlock()
				var out []audit.Entry
				for _, e := range st.rows {
					out = append(out, e)
				}
				return out
			},
			Reopen: func(*testing.T) audit.Sink { return sink{st} },
			Rejected: func(t *testing.T) []audit.Entry {
				es := audittest.Entries(t, 2)
				es[1].UserAgent = "a\x00b"
				return es
			},
			Break: func(*testing.T) func() {
				st.set(&st.down, true)
				return func() { st.set(&st.down, false) }
			},
			BreakHead: func(*testing.T) func() {
				st.set(&st.headDown, true)
				return func() { st.set(&st.headDown, false) }
			},
		}
	})
}

func TestRejected(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", audit.ErrRejected), true},
		{fmt.Errorf("x: %w", sqlState("22021")), true},
		{fmt.Errorf("x: %w", sqlState("42P01")), false},
		{context.Canceled, false},
	} {
		if got := audittest.Rejected(tc.err); got != tc.want {
			t.Errorf("Rejected(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

type sqlState string

func (s sqlState) Error() string    { return "SQLSTATE " + string(s) }
func (s sqlState) SQLState() string { return string(s) }
