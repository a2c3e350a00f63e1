package ws

import (
	"strconv"

	"github.com/pkgroute/pkgroute/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the status label of ws_connections_total.
const (
	statusAccepted            = "accepted"
	statusRejectedAuth        = "rejected_auth"
	statusRejectedAuthTimeout = "rejected_auth_timeout"
	statusRejectedOrigin      = "rejected_origin"
	statusRejectedLimit       = "rejected_limit"
)

// metrics holds the ws_* collectors; a nil *metrics records nothing.
type metrics struct {
	active       prometheus.Gauge
	conns        *prometheus.CounterVec
	received     prometheus.Counter
	sent         prometheus.Counter
	closes       *prometheus.CounterVec
	push         *prometheus.CounterVec
	brokerErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return &metrics{
		active: promreg.MustRegister(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ws_connections_active", Help: "Authenticated WebSocket connections open now.",
		})),
		conns: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_connections_total", Help: "WebSocket connection attempts by outcome.",
		}, []string{"status"})),
		received: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ws_messages_received_total", Help: "WebSocket data messages received.",
		})),
		sent: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ws_messages_sent_total", Help: "WebSocket data messages sent (replies, auth_ok and pushes).",
		})),
		closes: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_closes_total", Help: "Closed WebSocket connections by close code (1006: dropped without a close frame).",
		}, []string{"code"})),
		push: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_push_total", Help: "Server pushes by target scope (connection, user, role, all).",
		}, []string{"scope"})),
		brokerErrors: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ws_broadcast_errors_total", Help: "Failures to publish to or receive from the push broker.",
		})),
	}
}

func (m *metrics) conn(status string) {
	if m != nil {
		m.conns.WithLabelValues(status).Inc()
	}
}

func (m *metrics) activeAdd(d float64) {
	if m != nil {
		m.active.Add(d)
	}
}

func (m *metrics) recv() {
	if m != nil {
		m.received.Inc()
	}
}

func (m *metrics) sentN(n int) {
	if m != nil && n > 0 {
		m.sent.Add(float64(n))
	}
}

func (m *metrics) closed(code int) {
	if m != nil {
		m.closes.WithLabelValues(strconv.Itoa(code)).Inc()
	}
}

func (m *metrics) pushed(scope Scope) {
	if m != nil {
		m.push.WithLabelValues(string(scope)).Inc()
	}
}

func (m *metrics) brokerError() {
	if m != nil {
		m.brokerErrors.Inc()
	}
}
