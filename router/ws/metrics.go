package ws

import (
	"errors"
	"strconv"

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
		active: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ws_connections_active", Help: "Authenticated WebSocket connections open now.",
		})),
		conns: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_connections_total", Help: "WebSocket connection attempts by outcome.",
		}, []string{"status"})),
		received: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ws_messages_received_total", Help: "WebSocket data messages received.",
		})),
		sent: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ws_messages_sent_total", Help: "WebSocket data messages sent (replies, auth_ok and pushes).",
		})),
		closes: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_closes_total", Help: "Closed WebSocket connections by close code (1006: dropped without a close frame).",
		}, []string{"code"})),
		push: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ws_push_total", Help: "Server pushes by target scope (connection, user, role, all).",
		}, []string{"scope"})),
		brokerErrors: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ws_broadcast_errors_total", Help: "Failures to publish to or receive from the push broker.",
		})),
	}
}

// register registers c, or returns the collector already registered in
// its place.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("ws: register metrics: " + err.Error())
	}
	return c
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
