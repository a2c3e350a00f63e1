package lograte_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/internal/lograte"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		out = append(out, m)
	}
	buf.Reset()
	return out
}

func TestOneRecordPerKindPerInterval(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{t: time.Unix(1000, 0)}
	l := lograte.New(slog.New(slog.NewJSONHandler(&buf, nil)), 10*time.Second, clk.now)

	for range 1000 {
		l.Warn("broker failed", "error", "down")
		l.Error("limiter failed")
	}
	got := records(t, &buf)
	require.Len(t, got, 2)
	assert.Equal(t, "broker failed", got[0]["msg"])
	assert.Equal(t, "down", got[0]["error"])
	assert.NotContains(t, got[0], "suppressed")
	assert.Equal(t, "limiter failed", got[1]["msg"])

	clk.add(9 * time.Second)
	l.Warn("broker failed")
	assert.Empty(t, records(t, &buf), "within the interval")

	clk.add(time.Second)
	l.Warn("broker failed", "error", "still down")
	got = records(t, &buf)
	require.Len(t, got, 1)
	assert.Equal(t, float64(1000), got[0]["suppressed"], "999 in the first burst and 1 after")
	assert.Equal(t, "still down", got[0]["error"])

	clk.add(time.Hour)
	l.Error("limiter failed")
	l.Warn("broker failed")
	got = records(t, &buf)
	require.Len(t, got, 2)
	assert.Equal(t, float64(999), got[0]["suppressed"])
	assert.NotContains(t, got[1], "suppressed", "none left out since the last one")

	l.LogKind(context.Background(), "http: TLS", slog.LevelWarn, "http: TLS handshake error from a")
	l.LogKind(context.Background(), "http: TLS", slog.LevelWarn, "http: TLS handshake error from b")
	assert.Len(t, records(t, &buf), 1, "one per kind, whatever the message")
}

func TestDisabledLevelsAndNil(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{t: time.Unix(1000, 0)}
	l := lograte.New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})), 0, clk.now)
	l.Info("ignored")
	l.Error("kept")
	assert.Len(t, records(t, &buf), 1)

	var nilLogger *lograte.Logger
	nilLogger.Warn("nothing") // does not panic
	lograte.New(nil, 0, nil).Warn("nothing")
}

func TestConcurrentUse(t *testing.T) {
	var buf syncBuffer
	l := lograte.New(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				l.Warn("same")
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
