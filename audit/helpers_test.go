package audit_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// memSink is an in-memory, idempotent sink with programmable failures.
type memSink struct {
	mu      sync.Mutex
	byID    map[string]bool
	rows    []audit.Entry
	batches []int
	writes  int
	// fail, when set, decides the result of a write before it is applied.
	fail func(batch []audit.Entry) error
	// ambiguous makes failing writes store the batch anyway.
	ambiguous bool
	// gate, when set, blocks writes until it is closed or ctx ends.
	gate    chan struct{}
	waiting int // writes blocked at the gate
}

// blocked returns the number of writes waiting at the gate.
func (s *memSink) blocked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

func newMemSink() *memSink { return &memSink{byID: map[string]bool{}} }

func (s *memSink) Write(ctx context.Context, batch []audit.Entry) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.mu.Lock()
		s.waiting++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
		}()
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	var err error
	if s.fail != nil {
		err = s.fail(batch)
	}
	if err != nil && !s.ambiguous {
		return err
	}
	s.batches = append(s.batches, len(batch))
	for _, e := range batch {
		if !s.byID[e.ID.String()] {
			s.byID[e.ID.String()] = true
			s.rows = append(s.rows, e)
		}
	}
	return err
}

func (s *memSink) setFail(f func([]audit.Entry) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *memSink) setGate(g chan struct{}) {
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
}

func (s *memSink) stored() []audit.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]audit.Entry(nil), s.rows...)
}

func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

var errDown = errors.New("sink down")

// run starts l.Run and returns a function that closes the logger and waits
// for Run.
func run(t *testing.T, l *audit.Logger) (closeFn func(time.Duration) error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Run(context.Background()) }()
	closed := false
	closeFn = func(d time.Duration) error {
		if closed {
			return nil
		}
		closed = true
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		err := l.Close(ctx)
		if rerr := <-done; !errors.Is(rerr, audit.ErrClosed) {
			require.NoError(t, rerr)
		}
		return err
	}
	t.Cleanup(func() { _ = closeFn(5 * time.Second) })
	return closeFn
}

func entry(i int) audit.Entry {
	return audit.Entry{ActionType: "TEST", Resource: "r", RequestID: "req-" + strconv.Itoa(i), UserID: "u1"}
}

// requireConserved checks produced = written + dropped with nothing pending.
func requireConserved(t *testing.T, st audit.Stats) {
	t.Helper()
	require.Zero(t, st.Pending, "pending")
	require.Zero(t, st.Waiting, "waiting")
	require.Equal(t, st.Produced, st.Written+st.Dropped(), "produced = written + dropped: %+v", st)
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue returns the value of the series of name whose only label has
// value label ("" for an unlabelled metric).
func metricValue(t *testing.T, g prometheus.Gatherer, name, label string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}

// histogram returns the sample count and sum of the unlabelled histogram
// name.
func histogram(t *testing.T, g prometheus.Gatherer, name string) (uint64, float64) {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 && mf.GetMetric()[0].Histogram != nil {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("histogram %s not found", name)
	return 0, 0
}
