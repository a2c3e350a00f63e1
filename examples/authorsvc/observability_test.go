package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetricNames drives some traffic and checks that the scrape parses and
// carries the metric names of docs/protocol.md section 4.
func TestMetricNames(t *testing.T) {
	a := startApp(t, map[string]string{"DATABASE_URL": testenv.PostgresURL(t), "AUDIT_BATCH_TIMEOUT": "20ms"})
	tok := a.token(t, "writer")
	c := a.dial(t, tok)
	call(t, c, int64(CreateAuthor), `{"name":"metrics"}`)
	_ = next(t, c)
	code, _, _ := a.pkg(t, tok, int(Ping), `{}`)
	require.Equal(t, 200, code)
	_, err := a.dialErr(t, tok+"x")
	require.Error(t, err)
	res, _ := a.do(t, "POST", "/auth/login", "", `{"username":"writer","password":"writer"}`)
	require.Equal(t, 200, res.StatusCode)
	res, _ = a.do(t, "GET", "/authors", "not-a-jwt", "")
	require.Equal(t, 401, res.StatusCode)
	time.Sleep(100 * time.Millisecond) // an audit batch

	res, body := a.do(t, "GET", "/metrics", "", "")
	require.Equal(t, 200, res.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)
	for _, name := range []string{
		"http_requests_total", "http_request_duration_seconds", "http_requests_in_progress",
		"pkg_requests_total", "pkg_request_duration_seconds",
		"ws_connections_active", "ws_connections_total", "ws_messages_received_total", "ws_messages_sent_total",
		"ws_push_total",
		"auth_token_validations_total", "auth_jwks_refresh_total",
		"keycloak_auth_attempts_total", "keycloak_operation_duration_seconds", "circuit_breaker_state",
		"audit_logs_total", "audit_logs_written_total", "audit_queue_size", "audit_batch_size", "audit_write_duration_seconds",
		"db_query_duration_seconds", "db_pool_connections_in_use", "db_pool_connections_idle", "db_pool_wait_total",
	} {
		assert.Contains(t, families, name)
	}
	refused := false
	for _, m := range families["http_requests_total"].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["status"] == "401" && l["route"] == "/authors" {
			refused = true
		}
		assert.NotEqual(t, "unmatched", l["route"], "%v", l)
	}
	assert.True(t, refused, "a refused token is counted under its route")
	limiters := map[string]bool{}
	for _, m := range families["rate_limit_decisions_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "limiter" {
				limiters[l.GetValue()] = true
			}
		}
	}
	assert.Equal(t, map[string]bool{"http": true, "ws": true}, limiters, "decisions by limiter")
	for _, m := range families["pkg_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "transport" {
				assert.Contains(t, []string{"ws", "http"}, l.GetValue())
			}
		}
	}
}

// TestHealthWithRedisDown: a configured Redis that does not answer makes
// /health 503 with redis unhealthy; it recovers when Redis is back.
func TestHealthWithRedisDown(t *testing.T) {
	rs := testenv.StartRedis(t)
	a := startApp(t, map[string]string{"REDIS_URL": rs.URL(), "REDIS_KEY_PREFIX": testenv.RandomName("t") + ":"})
	health := func() (int, map[string]any) {
		res, body := a.do(t, "GET", "/health", "", "")
		var h map[string]any
		require.NoError(t, json.Unmarshal(body, &h))
		return res.StatusCode, h
	}
	code, h := health()
	require.Equal(t, 200, code)
	assert.Equal(t, "healthy", h["redis"])
	rs.Stop()
	code, h = health()
	assert.Equal(t, 503, code)
	res, body := a.do(t, "GET", "/live", "", "")
	assert.Equal(t, 200, res.StatusCode, "liveness does not depend on Redis")
	assert.JSONEq(t, `{"status":"alive"}`, string(body))
	assert.Empty(t, res.Header.Get("X-RateLimit-Limit"))
	assert.Equal(t, "unhealthy", h["status"])
	assert.Equal(t, "unhealthy", h["redis"])
	assert.Equal(t, "healthy", h["database"])
	rs.Start()
	require.Eventually(t, func() bool { code, _ := health(); return code == 200 }, 5*time.Second, 50*time.Millisecond)
	// go-redis' own report of the failed dial went to the app's logger.
	assert.Contains(t, a.stderr.String(), `msg="redis client" detail="redis: connection pool: failed to dial`)
}
