package dbopen

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"
)

// queryHook times every query, counts slow ones and logs them.
type queryHook struct {
	duration *prometheus.HistogramVec
	slow     *prometheus.CounterVec
	logger   *slog.Logger
	slowAt   time.Duration
}

func newQueryHook(reg prometheus.Registerer, logger *slog.Logger, slowAt time.Duration) (*queryHook, error) {
	h := &queryHook{logger: logger, slowAt: slowAt}
	if reg == nil {
		return h, nil
	}
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "db_query_duration_seconds",
		Help:    "Duration of database queries by operation.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"operation"})
	slow := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "db_slow_queries_total",
		Help: "Database queries slower than the slow-query threshold, by operation.",
	}, []string{"operation"})
	var err error
	if h.duration, err = promreg.Register(reg, duration); err != nil {
		return nil, err
	}
	if h.slow, err = promreg.Register(reg, slow); err != nil {
		return nil, err
	}
	return h, nil
}

// BeforeQuery implements bun.QueryHook.
func (h *queryHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

// AfterQuery implements bun.QueryHook.
func (h *queryHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	d := time.Since(e.StartTime)
	op := operation(e)
	if h.duration != nil {
		h.duration.WithLabelValues(op).Observe(d.Seconds())
	}
	if d < h.slowAt {
		return
	}
	if h.slow != nil {
		h.slow.WithLabelValues(op).Inc()
	}
	if h.logger.Enabled(ctx, slog.LevelWarn) {
		q := e.Query
		if len(q) > 500 {
			q = q[:500] + "..."
		}
		attrs := []any{"operation", op, "duration", d, "query", q}
		if e.Err != nil && !errors.Is(e.Err, sql.ErrNoRows) {
			attrs = append(attrs, "error", e.Err)
		}
		h.logger.WarnContext(ctx, "slow query", attrs...)
	}
}

// operation returns a bounded label for e: the statement's verb in lower
// case, or "other".
func operation(e *bun.QueryEvent) string {
	switch op := e.Operation(); strings.ToUpper(op) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "BEGIN", "COMMIT", "ROLLBACK",
		"CREATE", "DROP", "ALTER", "TRUNCATE", "WITH", "SAVEPOINT", "RELEASE":
		return strings.ToLower(op)
	case "CREATE TABLE", "CREATE INDEX":
		return "create"
	case "DROP TABLE", "DROP INDEX":
		return "drop"
	case "ADD COLUMN", "DROP COLUMN":
		return "alter"
	case "TRUNCATE TABLE":
		return "truncate"
	}
	return "other"
}

// poolCollector exports the connection pool's state.
type poolCollector struct {
	db                   *sql.DB
	inUse, idle, waitCnt *prometheus.Desc
}

func newPoolCollector(db *sql.DB) *poolCollector {
	return &poolCollector{
		db:      db,
		inUse:   prometheus.NewDesc("db_pool_connections_in_use", "Database connections in use.", nil, nil),
		idle:    prometheus.NewDesc("db_pool_connections_idle", "Idle database connections.", nil, nil),
		waitCnt: prometheus.NewDesc("db_pool_wait_total", "Times a query waited for a free database connection.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inUse
	ch <- c.idle
	ch <- c.waitCnt
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.Stats()
	ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(c.waitCnt, prometheus.CounterValue, float64(s.WaitCount))
}
