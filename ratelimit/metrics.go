package ratelimit

import (
	"github.com/pkgroute/pkgroute/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the limit_type label of rate_limit_hits_total.
const (
	LimitPerUser     = "per_user"
	LimitPerIP       = "per_ip"
	LimitWebSocket   = "websocket"
	LimitConnections = "connections"
)

// Metrics records the limit metrics of the wire contract:
// rate_limit_hits_total{limit_type} (refusals by limit),
// rate_limit_backend_errors_total{mode} (backend failures by fail mode) and
// rate_limit_decisions_total{limiter,outcome} (every decision: allowed,
// denied, error).
//
// Several components (the HTTP middleware, the WebSocket endpoint, the Redis
// limiters) may call [NewMetrics] with the same registerer: collectors that
// are already registered are reused. A nil *Metrics records nothing.
type Metrics struct {
	hits          *prometheus.CounterVec
	backendErrors *prometheus.CounterVec
	decisions     *prometheus.CounterVec
}

// NewMetrics registers the limit metrics with reg; a nil reg returns nil,
// which records nothing.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		return nil
	}
	return &Metrics{
		hits: registerCounterVec(reg, prometheus.CounterOpts{
			Name: "rate_limit_hits_total",
			Help: "Requests, messages or connections refused by a limit.",
		}, "limit_type"),
		backendErrors: registerCounterVec(reg, prometheus.CounterOpts{
			Name: "rate_limit_backend_errors_total",
			Help: "Limiter backend failures, by the fail mode applied.",
		}, "mode"),
		decisions: registerCounterVec(reg, prometheus.CounterOpts{
			Name: "rate_limit_decisions_total",
			Help: "Limiter decisions by limiter and outcome (allowed, denied, error).",
		}, "limiter", "outcome"),
	}
}

// Hit counts one refusal by the limit of type limitType (one of the Limit*
// constants).
func (m *Metrics) Hit(limitType string) {
	if m == nil {
		return
	}
	m.hits.WithLabelValues(limitType).Inc()
}

// BackendError counts one backend failure handled in mode.
func (m *Metrics) BackendError(mode FailMode) {
	if m == nil {
		return
	}
	m.backendErrors.WithLabelValues(mode.String()).Inc()
}

// Decisions returns the counters of one limiter's outcomes, resolved once so
// that counting costs no label lookup. A nil *Metrics returns counters that
// record nothing.
func (m *Metrics) Decisions(limiter string) DecisionCounters {
	if m == nil {
		return DecisionCounters{}
	}
	return DecisionCounters{
		allowed: m.decisions.WithLabelValues(limiter, "allowed"),
		denied:  m.decisions.WithLabelValues(limiter, "denied"),
		failed:  m.decisions.WithLabelValues(limiter, "error"),
	}
}

// DecisionCounters counts the decisions of one limiter; the zero value
// counts nothing.
type DecisionCounters struct {
	allowed, denied, failed prometheus.Counter
}

// Count counts one decision: an error when err is not nil, else allowed or
// denied.
func (d DecisionCounters) Count(allowed bool, err error) {
	var c prometheus.Counter
	switch {
	case err != nil:
		c = d.failed
	case allowed:
		c = d.allowed
	default:
		c = d.denied
	}
	if c != nil {
		c.Inc()
	}
}

// registerCounterVec registers a counter vector with reg, or returns the one
// already registered under the same name and labels.
func registerCounterVec(reg prometheus.Registerer, opts prometheus.CounterOpts, labels ...string) *prometheus.CounterVec {
	return promreg.MustRegister(reg, prometheus.NewCounterVec(opts, labels))
}
