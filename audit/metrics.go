package audit

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	logs      *prometheus.CounterVec
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
	m.logs = register(reg, m.logs)
	m.written = register(reg, m.written)
	m.dropped = register(reg, m.dropped)
	m.queue = register(reg, m.queue)
	m.batch = register(reg, m.batch)
	m.errs = register(reg, m.errs)
	m.writeTime = register(reg, m.writeTime)
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(string(r))
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("audit: register metrics: " + err.Error())
	}
	return c
}

func outcomeLabel(o Outcome) string {
	switch o {
	case Success, Error, PermissionDenied, RateLimited:
		return string(o)
	}
	return "other"
}
