package routermw

import (
	"context"
	"strconv"
	"time"

	"github.com/pkgroute/pkgroute/internal/promreg"
	"github.com/pkgroute/pkgroute/router"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics returns a router middleware that counts package calls in
// pkg_requests_total{pkg_id,transport,status_code} and observes their
// duration in pkg_request_duration_seconds{pkg_id,transport}. transport is
// "ws", "http" or "unknown". pkg_id values are registered ids only (the
// middleware sees no other), so the labels stay bounded. A nil registerer
// gives a middleware that does nothing. Registering twice on one registerer
// shares the collectors.
func Metrics[T router.ID](reg prometheus.Registerer) router.Middleware[T] {
	if reg == nil {
		return func(next router.Handler[T]) router.Handler[T] { return next }
	}
	total := requestsTotal(reg)
	duration := promreg.MustRegister(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "pkg_request_duration_seconds", Help: "Duration of package requests.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"pkg_id", "transport"}))
	return func(next router.Handler[T]) router.Handler[T] {
		return router.HandlerFunc[T](func(ctx context.Context, req *router.Request[T]) router.Response {
			start := time.Now()
			resp := next.ServePackage(ctx, req)
			id := strconv.FormatInt(int64(req.PkgID), 10)
			transport := router.TransportFrom(ctx)
			if transport != "ws" && transport != "http" {
				transport = "unknown"
			}
			total.WithLabelValues(id, transport, strconv.Itoa(int(resp.Status))).Inc()
			duration.WithLabelValues(id, transport).Observe(time.Since(start).Seconds())
			return resp
		})
	}
}

func requestsTotal(reg prometheus.Registerer) *prometheus.CounterVec {
	return promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pkg_requests_total", Help: "Package requests by pkg_id, transport and status_code.",
	}, []string{"pkg_id", "transport", "status_code"}))
}

// CountRefused returns a function that counts in pkg_requests_total a
// request answered before the router saw it, such as a WebSocket message
// over the message rate (status 4), so that the metric sees every reply of
// a package. Pass registered pkg_ids only, to keep the labels bounded. The
// counter is shared with [Metrics] on the same registerer; a nil
// registerer counts nothing.
func CountRefused(reg prometheus.Registerer) func(pkgID int64, transport string, status router.StatusCode) {
	if reg == nil {
		return func(int64, string, router.StatusCode) {}
	}
	total := requestsTotal(reg)
	return func(pkgID int64, transport string, status router.StatusCode) {
		total.WithLabelValues(strconv.FormatInt(pkgID, 10), transport, strconv.Itoa(int(status))).Inc()
	}
}
