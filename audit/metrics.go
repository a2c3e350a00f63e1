package audit

import (
	"github.com/pkgroute/pkgroute/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	logs      *prometheus.CounterVec
	byOutcome map[Outcome]prometheus.Counter // cached children of logs
	other     prometheus.Counter
	byReason  [len(dropReasons)]prometheus.Counter
	written   prometheus.Counter
	dropped   *prometheus.CounterVec
	queue     prometheus.Gauge
	batch     prometheus.Histogram
	errs      *prometheus.CounterVec
	writeTime prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		logs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_logs_total", Help: "Audit entries produced, by outcome.",
		}, []string{"outcome"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audit_logs_written_total", Help: "Audit entries written to the sink.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_logs_dropped_total", Help: "Audit entries dropped, by reason.",
		}, []string{"reason"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audit_queue_size", Help: "Audit entries buffered (queued or being written).",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "audit_batch_size", Help: "Entries per written audit batch.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000},
		}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_log_errors_total", Help: "Failed audit batch writes, by error type.",
		}, []string{"error_type"}),
		writeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "audit_write_duration_seconds", Help: "Duration of audit batch writes.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	m.logs = promreg.MustRegister(reg, m.logs)
	m.written = promreg.MustRegister(reg, m.written)
	m.dropped = promreg.MustRegister(reg, m.dropped)
	m.queue = promreg.MustRegister(reg, m.queue)
	m.batch = promreg.MustRegister(reg, m.batch)
	m.errs = promreg.MustRegister(reg, m.errs)
	m.writeTime = promreg.MustRegister(reg, m.writeTime)
	for i, r := range dropReasons {
		m.byReason[i] = m.dropped.WithLabelValues(string(r))
	}
	m.byOutcome = make(map[Outcome]prometheus.Counter, 4)
	for _, o := range []Outcome{Success, Error, PermissionDenied, RateLimited} {
		m.byOutcome[o] = m.logs.WithLabelValues(string(o))
	}
	m.other = m.logs.WithLabelValues("other")
	return m
}

// produced counts one entry of outcome o.
func (m *metrics) produced(o Outcome) {
	if c, ok := m.byOutcome[o]; ok {
		c.Inc()
		return
	}
	m.other.Inc()
}
