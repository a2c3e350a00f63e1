package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Host = "api.example.com"
	req.Header.Set("Accept", "text/plain")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	require.NoError(t, err)
	return fams
}

// 10,000 distinct paths (matched, unmatched, odd methods, bad hosts) leave
// a handful of series, labelled by route pattern.
func TestMetricsCardinalityBounded(t *testing.T) {
	st := newStack(t)
	methods := []string{"GET", "GET", "DELETE", "BREW", "PROPFIND"}
	for i := range 10_000 {
		var path string
		switch i % 3 {
		case 0:
			path = fmt.Sprintf("/authors/%d", i)
		case 1:
			path = fmt.Sprintf("/random/%d/x?q=%d", i, i)
		default:
			path = fmt.Sprintf("/%d", i)
		}
		req := httptest.NewRequest(methods[i%len(methods)], path, nil)
		req.Host = "api.example.com"
		if i%100 == 0 {
			req.Host = fmt.Sprintf("h%d.evil.example", i)
		}
		h := httptest.NewRecorder()
		st.handler.ServeHTTP(h, req)
	}
	// One panic, counted as 500 on its route.
	req := httptest.NewRequest("GET", "/panic", nil)
	req.Host = "api.example.com"
	st.handler.ServeHTTP(httptest.NewRecorder(), req)

	fams := scrape(t, st.handler)
	total := fams["http_requests_total"]
	require.NotNil(t, total)
	routes := map[string]bool{}
	var sum float64
	for _, m := range total.GetMetric() {
		l := labels(m)
		routes[l["route"]] = true
		assert.Contains(t, []string{"GET", "DELETE", "OTHER", "HEAD"}, l["method"])
		sum += m.GetCounter().GetValue()
	}
	assert.LessOrEqual(t, len(total.GetMetric()), 20, "series of http_requests_total")
	assert.Equal(t, map[string]bool{"/authors/{id}": true, "unmatched": true, "/panic": true}, routes)
	assert.InDelta(t, 10_001, sum, 0)

	var panics float64
	for _, m := range total.GetMetric() {
		if l := labels(m); l["route"] == "/panic" && l["status"] == "500" {
			panics = m.GetCounter().GetValue()
		}
	}
	assert.InDelta(t, 1, panics, 0)

	dur := fams["http_request_duration_seconds"]
	require.NotNil(t, dur)
	assert.Equal(t, dto.MetricType_HISTOGRAM, dur.GetType())
	assert.LessOrEqual(t, len(dur.GetMetric()), 10)

	inProgress := fams["http_requests_in_progress"]
	require.NotNil(t, inProgress)
	for _, m := range inProgress.GetMetric() {
		l := labels(m)
		if l["route"] == "/metrics" {
			continue // the scrape itself is in flight
		}
		assert.InDelta(t, 0, m.GetGauge().GetValue(), 0, l)
	}
	assert.NotContains(t, fmt.Sprint(fams), "/random/", "no raw path in any label")
}

func TestMetricsInProgressFollowsRoute(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: reg})
	require.NoError(t, err)
	gauge := func(route string) float64 {
		fams, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range fams {
			if f.GetName() != "http_requests_in_progress" {
				continue
			}
			for _, mm := range f.GetMetric() {
				if labels(mm)["route"] == route {
					return mm.GetGauge().GetValue()
				}
			}
		}
		return 0
	}
	var during [2]float64
	var beforeRoute float64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		during = [2]float64{gauge("/items/{id}"), gauge("unmatched")}
	})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		beforeRoute = gauge("unmatched")
		middleware.Routes(mux).ServeHTTP(w, r)
	})
	h := m.Middleware(inner)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/items/9", nil))

	assert.InDelta(t, 1, beforeRoute, 0, "unmatched until routed")
	assert.Equal(t, [2]float64{1, 0}, during, "moved to the route once matched")
	assert.InDelta(t, 0, gauge("/items/{id}"), 0)
}

func TestNewMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	m1, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: reg})
	require.NoError(t, err)
	m2, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: reg})
	require.NoError(t, err, "the second instance reuses the collectors")
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	m1.Middleware(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	m2.Middleware(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == "http_requests_total" {
			require.Len(t, f.GetMetric(), 1)
			assert.InDelta(t, 2, f.GetMetric()[0].GetCounter().GetValue(), 0)
			assert.Equal(t, map[string]string{"method": "GET", "route": "unmatched", "status": "200"}, labels(f.GetMetric()[0]))
		}
	}

	// A conflicting collector of the same name is an error.
	bad := prometheus.NewRegistry()
	bad.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "http_requests_total", Help: "x"}))
	_, err = middleware.NewMetrics(middleware.MetricsConfig{Registerer: bad})
	require.Error(t, err)

	// Nil registerer: works, exposes nothing.
	m3, err := middleware.NewMetrics(middleware.MetricsConfig{})
	require.NoError(t, err)
	m3.Middleware(ok).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestMetricsHandlerNilGatherer(t *testing.T) {
	rec := httptest.NewRecorder()
	middleware.MetricsHandler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Empty(t, rec.Body.String())
}

// A layer that runs the rest of the chain on another goroutine
// (http.TimeoutHandler) may report the route after the request was
// answered; the in-progress gauge must not be left raised.
func TestMetricsLateRouteReport(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: reg})
	require.NoError(t, err)
	mux := http.NewServeMux()
	innerDone := make(chan struct{})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) { close(innerDone) })
	release := make(chan struct{})
	late := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // only after the timeout answered
		middleware.Routes(mux).ServeHTTP(w, r)
	})
	h := m.Middleware(http.TimeoutHandler(late, 10*time.Millisecond, "timeout"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	close(release)
	<-innerDone

	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		switch f.GetName() {
		case "http_requests_in_progress":
			for _, mm := range f.GetMetric() {
				assert.InDelta(t, 0, mm.GetGauge().GetValue(), 0, labels(mm))
			}
		case "http_requests_total":
			require.Len(t, f.GetMetric(), 1)
			assert.Equal(t, map[string]string{"method": "GET", "route": "unmatched", "status": "503"}, labels(f.GetMetric()[0]))
		}
	}
}

// Requests refused above the ServeMux (here by a body limit) are labelled
// with their route when Match sits below the observers.
func TestMatchLabelsRefusalsWithTheirRoute(t *testing.T) {
	for _, withMatch := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		m, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: reg})
		require.NoError(t, err)
		mux := http.NewServeMux()
		mux.HandleFunc("POST /authors/{id}", func(w http.ResponseWriter, r *http.Request) {})
		mws := []middleware.Middleware{m.Middleware}
		if withMatch {
			mws = append(mws, middleware.Match(mux))
		}
		mws = append(mws, middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: 10}))
		h := middleware.Chain(mws...)(middleware.Routes(mux))
		for _, path := range []string{"/authors/1", "/authors/2", "/nope"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(strings.Repeat("x", 100)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
		}
		fams, err := reg.Gather()
		require.NoError(t, err)
		got := map[string]float64{}
		for _, f := range fams {
			if f.GetName() == "http_requests_total" {
				for _, mt := range f.GetMetric() {
					got[labels(mt)["route"]] += mt.GetCounter().GetValue()
				}
			}
		}
		if withMatch {
			assert.Equal(t, map[string]float64{"/authors/{id}": 2, "unmatched": 1}, got)
		} else {
			assert.Equal(t, map[string]float64{"unmatched": 3}, got)
		}
	}
}
