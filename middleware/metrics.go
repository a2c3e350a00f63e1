package middleware

import (
	"net/http"
	"strconv"
	"time"

	"github.com/pkgroute/pkgroute/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsConfig configures [NewMetrics].
type MetricsConfig struct {
	// Registerer receives the collectors; nil means they are kept but not
	// registered (no metrics are exposed). Collectors already registered
	// on it with the same names and labels (by another Metrics) are reused.
	Registerer prometheus.Registerer
	// Buckets of http_request_duration_seconds; nil means
	// prometheus.DefBuckets.
	Buckets []float64
}

// Metrics counts HTTP requests with the collectors of the wire contract:
// http_requests_total{method,route,status},
// http_request_duration_seconds{method,route} and
// http_requests_in_progress{method,route}.
//
// Labels are bounded: route is the matched pattern without its method
// (reported by [Routes]) or "unmatched", never the raw path; method is one
// of the standard methods or "OTHER".
type Metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inProgress *prometheus.GaugeVec
}

// NewMetrics builds the collectors and registers them on cfg.Registerer.
func NewMetrics(cfg MetricsConfig) (*Metrics, error) {
	buckets := cfg.Buckets
	if buckets == nil {
		buckets = prometheus.DefBuckets
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request duration in seconds, by method and route pattern.",
			Buckets: buckets,
		}, []string{"method", "route"}),
		inProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "http_requests_in_progress",
			Help: "HTTP requests being served, by method and route pattern (\"unmatched\" until routed).",
		}, []string{"method", "route"}),
	}
	if cfg.Registerer == nil {
		return m, nil
	}
	var err error
	if m.requests, err = promreg.Register(cfg.Registerer, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = promreg.Register(cfg.Registerer, m.duration); err != nil {
		return nil, err
	}
	if m.inProgress, err = promreg.Register(cfg.Registerer, m.inProgress); err != nil {
		return nil, err
	}
	return m, nil
}

// Middleware counts and times every request passing through it. A request
// is "in progress" under route "unmatched" until [Routes] reports its
// pattern. A panic passing through is counted with status 500.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info, r := observe(r)
		method := methodLabel(r.Method)
		// route and gauge move from "unmatched" to the pattern when Routes
		// reports it; finished stops a late report (from a goroutine that
		// outlived the request) from touching the gauge again.
		var (
			route    = unmatchedRoute
			gauge    prometheus.Gauge
			finished bool
		)
		info.locked(func() {
			if info.route != "" {
				route = info.route
			}
			gauge = m.inProgress.WithLabelValues(method, route)
			gauge.Inc()
			info.onRoute = append(info.onRoute, func(rt string) {
				if finished {
					return
				}
				gauge.Dec()
				route = rt
				gauge = m.inProgress.WithLabelValues(method, route)
				gauge.Inc()
			})
		})
		rw := &respWriter{w: w}
		done := false
		defer func() {
			var rt string
			info.locked(func() {
				finished = true
				gauge.Dec()
				rt = route
			})
			status := rw.status
			if !done {
				status = http.StatusInternalServerError
			} else if status == 0 {
				status = http.StatusOK
			}
			if rt == unmatchedRoute {
				rt = info.routeOf(r)
			}
			m.requests.WithLabelValues(method, rt, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(method, rt).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rw, r)
		done = true
	})
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// MetricsHandler serves the metrics of g in the Prometheus exposition
// formats; nil serves none.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = prometheus.Gatherers{}
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
