package routermw_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/routermw"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRouter(routermw.Metrics[PkgID](reg))
	ws := router.WithTransport(context.Background(), "ws")
	httpCtx := router.WithTransport(context.Background(), "http")
	r.Dispatch(ws, alice, envelope(pkgOK, `{}`))
	r.Dispatch(ws, alice, envelope(pkgOK, `{}`))
	r.Dispatch(ws, alice, envelope(pkgAdmin, `{}`))
	r.Dispatch(httpCtx, nil, envelope(pkgLimited, `{}`))
	r.Dispatch(context.Background(), nil, envelope(pkgSchema, `{}`))
	r.Dispatch(ws, alice, envelope(42, `{}`)) // unknown: not counted, no unbounded label
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pkg_requests_total Package requests by pkg_id, transport and status_code.
# TYPE pkg_requests_total counter
pkg_requests_total{pkg_id="1",status_code="0",transport="ws"} 2
pkg_requests_total{pkg_id="2",status_code="3",transport="ws"} 1
pkg_requests_total{pkg_id="3",status_code="4",transport="http"} 1
pkg_requests_total{pkg_id="5",status_code="2",transport="unknown"} 1
`), "pkg_requests_total"))
	assert.Equal(t, 4, testutil.CollectAndCount(reg, "pkg_request_duration_seconds"))

	// A second router on the same registry shares the collectors.
	r2 := newRouter(routermw.Metrics[PkgID](reg))
	r2.Dispatch(ws, alice, envelope(pkgOK, `{}`))
	assert.Equal(t, 4, testutil.CollectAndCount(reg, "pkg_requests_total"))

	// No registerer: the middleware passes through.
	r3 := newRouter(routermw.Metrics[PkgID](nil))
	assert.Contains(t, string(r3.Dispatch(ws, alice, envelope(pkgOK, `{}`))), `"status_code":0`)
}

func TestCountRefusedSharesTheCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := router.New[int](router.Config{})
	r.Use(routermw.Metrics[int](reg))
	r.Register(7, router.HandlerFunc[int](func(context.Context, *router.Request[int]) router.Response {
		return router.Response{}
	}), router.Public())
	r.Dispatch(router.WithTransport(context.Background(), "ws"), nil, []byte(`{"pkg_id":7,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{}}`))
	count := routermw.CountRefused(reg)
	count(7, "ws", router.StatusRateLimited)
	count(7, "ws", router.StatusRateLimited)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pkg_requests_total Package requests by pkg_id, transport and status_code.
# TYPE pkg_requests_total counter
pkg_requests_total{pkg_id="7",status_code="0",transport="ws"} 1
pkg_requests_total{pkg_id="7",status_code="4",transport="ws"} 2
`), "pkg_requests_total"))
	routermw.CountRefused(nil)(7, "ws", router.StatusRateLimited) // counts nothing, does not panic
}
