package main

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The operators' files whose queries must only use exported metrics.
const (
	deployDir      = "../../deploy"
	deployAlerts   = deployDir + "/prometheus/alerts.yml"
	deployGrafana  = deployDir + "/grafana"
	moduleRootPath = "../.."
)

// absentAfterLoad lists the metrics that deploy/ uses but that the example
// does not export after exampleLoad, with the reason. Each must still be a
// metric name written in the library's code (checked below).
var absentAfterLoad = map[string]string{
	// Set by Prometheus for every scrape target, not by the service.
	"up": "scrape",
	// Vector children appear with their first event: failures the load does
	// not provoke.
	"rate_limit_backend_errors_total":     "a limiter backend (Redis) failure",
	"audit_log_errors_total":              "a failed audit batch write",
	"circuit_breaker_state_changes_total": "a breaker transition (identity provider failing)",
	"db_slow_queries_total":               "a query over the slow-query threshold",
	// Registered by the Redis limiters only (REDIS_URL).
	"rate_limit_redis_duration_seconds": "REDIS_URL configured",
}

// exampleLoad starts the example on SQLite and drives the traffic described
// in deploy/README.md, then returns the scraped metric families.
func exampleLoad(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	a := startApp(t, map[string]string{
		"RATE_LIMIT_PER_MINUTE": "30", "WS_MESSAGE_RATE_LIMIT": "2", "AUDIT_BATCH_TIMEOUT": "20ms",
	})
	res, _ := a.do(t, "POST", "/auth/login", "", `{"username":"writer","password":"writer"}`)
	require.Equal(t, http.StatusOK, res.StatusCode)
	writer, reader := a.token(t, "writer"), a.token(t, "reader")

	// WebSocket: an audited package call with its push, then messages
	// until the message rate refuses one; a connection with a bad token.
	c := a.dial(t, writer)
	require.EqualValues(t, 0, call(t, c, int64(CreateAuthor), `{"name":"deploy"}`).StatusCode())
	_ = next(t, c) // the push
	limited := false
	for range 10 {
		if call(t, c, int64(Ping), `{}`).StatusCode() == 4 {
			limited = true
			break
		}
	}
	require.True(t, limited, "the WebSocket message rate refused a message")
	_, err := a.dialErr(t, writer+"x")
	require.Error(t, err)

	// HTTP: a refused token, a package over the bridge, then requests
	// until the HTTP rate limit answers 429.
	res, _ = a.do(t, "GET", "/authors", "not-a-jwt", "")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	code, _, _ := a.pkg(t, writer, int(GetAuthors), `{}`)
	require.Equal(t, http.StatusOK, code)
	limited = false
	for range 40 {
		res, _ := a.do(t, "POST", "/api/pkg/10", reader, `{"data":{}}`)
		if res.StatusCode == http.StatusTooManyRequests {
			limited = true
			break
		}
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	require.True(t, limited, "the HTTP rate limit answered 429")
	require.NoError(t, c.Close())

	var families map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		res, body := a.do(t, "GET", "/metrics", "", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		var err error
		families, err = parser.TextToMetricFamilies(strings.NewReader(string(body)))
		require.NoError(t, err)
		w := families["audit_logs_written_total"]
		_, closed := families["ws_closes_total"]
		return closed && w != nil && len(w.GetMetric()) > 0 && w.GetMetric()[0].GetCounter().GetValue() > 0
	}, 10*time.Second, 50*time.Millisecond, "an audit batch is written and the close is counted")
	return families
}

// TestDeployMetricsExported: every metric named by a query of the Grafana
// dashboards or an expression of the alert rules in deploy/ is exported by
// the example after a short load (or listed in absentAfterLoad).
func TestDeployMetricsExported(t *testing.T) {
	exprs := deployExpressions(t)
	used := map[string][]string{} // metric -> where
	for where, list := range exprs {
		for _, e := range list {
			names := promqlMetricNames(e)
			require.NotEmpty(t, names, "%s: no metric in %q", where, e)
			for _, n := range names {
				used[n] = append(used[n], where)
			}
		}
	}
	require.Greater(t, len(used), 30, "metrics used by deploy/")
	families := exampleLoad(t)
	source := librarySource(t)
	listed := map[string]bool{}
	for name, where := range used {
		if exported(families, name) {
			continue
		}
		name = absentName(name)
		listed[name] = true
		reason, ok := absentAfterLoad[name]
		if !ok {
			t.Errorf("%s (used by %s) is not exported by the example after the load", name, strings.Join(uniq(where), ", "))
			continue
		}
		if name != "up" {
			assert.Contains(t, source, `"`+name+`"`, "%s (absent after the load: %s) is no metric of the library", name, reason)
		}
	}
	for name := range absentAfterLoad {
		assert.True(t, listed[name], "absentAfterLoad lists %s, which deploy/ does not use or the example exports", name)
	}
}

// absentName returns the key of absentAfterLoad for a series name: the
// histogram's name for its _bucket, _sum and _count series.
func absentName(name string) string {
	if _, ok := absentAfterLoad[name]; ok {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, ok := absentAfterLoad[base]; ok {
				return base
			}
		}
	}
	return name
}

// exported reports whether families holds the metric name, or the
// histogram or summary a _bucket, _sum or _count series belongs to.
func exported(families map[string]*dto.MetricFamily, name string) bool {
	if f, ok := families[name]; ok && len(f.GetMetric()) > 0 {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := families[base]; ok && len(f.GetMetric()) > 0 {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				return true
			case dto.MetricType_SUMMARY:
				return suffix != "_bucket"
			}
		}
	}
	return false
}

func uniq(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// librarySource returns the module's non-test Go code, outside the example.
func librarySource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(moduleRootPath, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "examples", "bench", "testdata", ".git", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b.Write(src)
		}
		return nil
	})
	require.NoError(t, err)
	return b.String()
}

// deployExpressions returns the PromQL of deploy/: every dashboard query and
// variable query, and every rule expression, keyed by file.
func deployExpressions(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	files, err := filepath.Glob(deployGrafana + "/*.json")
	require.NoError(t, err)
	require.Len(t, files, 6)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var d any
		require.NoError(t, json.Unmarshal(b, &d), f)
		out[filepath.Base(f)] = dashboardExpressions(d)
		require.NotEmpty(t, out[filepath.Base(f)], f)
	}
	b, err := os.ReadFile(deployAlerts)
	require.NoError(t, err)
	rules := ruleExpressions(string(b))
	require.Equal(t, strings.Count(string(b), "- alert: "), len(rules), "one expression per rule")
	out[filepath.Base(deployAlerts)] = rules
	return out
}

// labelValues matches a Grafana variable query label_values(expr, label).
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*\w+\s*\)\s*$`)

// dashboardExpressions collects the "expr" of every target and the PromQL
// inside each variable's label_values query.
func dashboardExpressions(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok {
				switch k {
				case "expr":
					out = append(out, s)
				case "definition":
					if m := labelValues.FindStringSubmatch(s); m != nil {
						out = append(out, m[1])
					}
				}
				continue
			}
			out = append(out, dashboardExpressions(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, dashboardExpressions(x)...)
		}
	}
	return out
}

// ruleExpressions returns the expr values of a rule file: single-line
// plain scalars and block scalars (expr: |), the forms alerts.yml uses.
func ruleExpressions(yml string) []string {
	var out []string
	lines := strings.Split(yml, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimLeft(line, " ")
		value, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		if value != "|" && value != "|-" && value != ">" && value != ">-" {
			out = append(out, value)
			continue
		}
		indent := len(line) - len(trimmed)
		var block []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			block = append(block, strings.TrimSpace(next))
			i++
		}
		out = append(out, strings.TrimSpace(strings.Join(block, " ")))
	}
	return out
}

// PromQL words that are never metric names. Identifiers followed by "(" are
// functions and need no list.
var (
	promqlAggregators = map[string]bool{
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"limitk": true, "limit_ratio": true,
	}
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "atan2": true, "offset": true, "bool": true,
		"inf": true, "nan": true, "start": true, "end": true,
	}
	// Followed by a parenthesized list of label names.
	promqlLabelLists = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
)

// promqlMetricNames returns the metric names of a PromQL expression in the
// order they appear: identifiers that are not functions, aggregators,
// keywords or label names; label matchers ({...}), ranges ([...]), strings,
// numbers, durations and Grafana variables ($name) are skipped.
func promqlMetricNames(expr string) []string {
	var names []string
	isStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20) >= 'a' && (c|0x20) <= 'z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{':
			i = skipGroup(expr, i, '}')
		case c == '[':
			i = skipGroup(expr, i, ']')
		case c == '$' || c >= '0' && c <= '9' || c == '.':
			for i++; i < len(expr) && (isPart(expr[i]) || expr[i] == '.'); i++ {
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			next := byte(0)
			if k < len(expr) {
				next = expr[k]
			}
			lower := strings.ToLower(word)
			switch {
			case promqlLabelLists[lower] && next == '(':
				i = skipGroup(expr, k, ')')
				continue
			case promqlLabelLists[lower], promqlAggregators[lower], promqlKeywords[lower], next == '(':
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	return names
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return i
}

// skipGroup returns the index after the closing byte of the group opened at
// i, stepping over string literals.
func skipGroup(s string, i int, closing byte) int {
	for i++; i < len(s); {
		switch s[i] {
		case '"', '\'', '`':
			i = skipString(s, i)
		case closing:
			return i + 1
		default:
			i++
		}
	}
	return i
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="pkgroute"} == 0`, []string{"up"}},
		{`absent(up{job="pkgroute"} == 1)`, []string{"up"}},
		{`sum by (job, instance) (rate(http_requests_total{job="pkgroute",status=~"5.."}[5m])) / sum by (job, instance) (rate(http_requests_total{job="pkgroute"}[5m])) > 0.05`,
			[]string{"http_requests_total", "http_requests_total"}},
		{`histogram_quantile(0.99, sum by (le, pkg_id) (rate(pkg_request_duration_seconds_bucket{job=~"$job",instance=~"$instance"}[$__rate_interval])))`,
			[]string{"pkg_request_duration_seconds_bucket"}},
		{`max by (job, instance) (db_pool_connections_idle{job="pkgroute"}) == 0 and sum by (job, instance) (rate(db_pool_wait_total[5m])) > 1`,
			[]string{"db_pool_connections_idle", "db_pool_wait_total"}},
		{`a unless on (job) group_left (x, y) b offset 10m`, []string{"a", "b"}},
		{`sum without(le)(x) * on(instance) group_right() y`, []string{"x", "y"}},
		{`ws_connections_active offset 10m < 0.5 * ws_connections_active @ start()`, []string{"ws_connections_active", "ws_connections_active"}},
		{`topk(5, sum(rate(audit_logs_total{reason="a}b",x='{'}[1h:5m])))`, []string{"audit_logs_total"}},
		{`label_replace(process_start_time_seconds, "dst", "$1", "src", "(.*)") > 1e3 + Inf - NaN`, []string{"process_start_time_seconds"}},
		{"count(`x`) + 0x1F + go_goroutines", []string{"go_goroutines"}},
		{`changes(process_start_time_seconds{job="pkgroute"}[15m]) > 2`, []string{"process_start_time_seconds"}},
		{`rate(x[5m]) and bool y`, []string{"x", "y"}},
		{`sum(ns:metric:rate5m)`, []string{"ns:metric:rate5m"}},
	} {
		assert.Equal(t, tc.want, promqlMetricNames(tc.expr), tc.expr)
	}
}

func TestRuleExpressions(t *testing.T) {
	yml := `groups:
  - name: g
    rules:
      - alert: One
        expr: up == 0
        for: 1m
      - alert: Two
        expr: |
          sum(a)
            / sum(b) > 1
        for: 5m
      - alert: Three
        # comment
        expr: >-
          c > 0

        labels: {}
`
	assert.Equal(t, []string{"up == 0", "sum(a) / sum(b) > 1", "c > 0"}, ruleExpressions(yml))
}
