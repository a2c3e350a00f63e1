package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type auditPage struct {
	Items []map[string]any `json:"items"`
	Meta  struct {
		Page    int  `json:"page"`
		PerPage int  `json:"per_page"`
		Total   int  `json:"total"`
		Pages   int  `json:"pages"`
		HasMore bool `json:"has_more"`
	} `json:"meta"`
}

func (a *app) auditLogs(t *testing.T, token, query string) auditPage {
	t.Helper()
	var page auditPage
	require.Eventually(t, func() bool {
		res, body := a.do(t, "GET", "/audit-logs?"+query, token, "")
		require.Equal(t, 200, res.StatusCode, "%s", body)
		require.NoError(t, json.Unmarshal(body, &page))
		return page.Meta.Total > 0
	}, 5*time.Second, 50*time.Millisecond, "no audit entries for %s", query)
	return page
}

func TestAuditTrail(t *testing.T) {
	databases(t, func(t *testing.T, dsn string) {
		a := startApp(t, map[string]string{"DATABASE_URL": dsn, "AUDIT_BATCH_TIMEOUT": "20ms"})
		admin, writer, reader := a.token(t, "admin"), a.token(t, "writer"), a.token(t, "reader")

		c := a.dial(t, writer)
		m := call(t, c, int64(CreateAuthor), `{"name":"Audited","password":"hunter2"}`)
		require.EqualValues(t, 2, m.StatusCode(), "schema refuses the extra field")
		call(t, c, int64(CreateAuthor), `{"name":"Audited"}`)
		call(t, c, int64(DeleteAuthor), `{"id":1}`) // writer lacks delete-author
		res, _ := a.do(t, "POST", "/authors", writer, `{"name":"Over HTTP"}`)
		require.Equal(t, 201, res.StatusCode)
		code, _, _ := a.pkg(t, reader, int(Ping), `{"token":"Bearer abc.def.ghi","nested":[{"Password":"x"}]}`)
		require.Equal(t, 200, code)

		page := a.auditLogs(t, admin, "action_type=WS:CREATE_AUTHOR&outcome=success")
		require.Len(t, page.Items, 1)
		e := page.Items[0]
		for _, k := range []string{"id", "timestamp", "user_id", "username", "user_roles", "action_type", "resource", "outcome",
			"ip_address", "user_agent", "request_id", "request_data", "response_status", "error_message", "duration_ms"} {
			assert.Contains(t, e, k)
		}
		assert.Equal(t, "writer", e["username"])
		assert.Equal(t, "127.0.0.1", e["ip_address"])
		_, err := time.Parse(time.RFC3339, e["timestamp"].(string))
		assert.NoError(t, err)

		page = a.auditLogs(t, admin, "outcome=permission_denied&username=writer")
		assert.Equal(t, "WS:DELETE_AUTHOR", page.Items[0]["action_type"])
		page = a.auditLogs(t, admin, "action_type=HTTP:POST")
		assert.Equal(t, "writer", page.Items[0]["username"])
		assert.Equal(t, "/authors", page.Items[0]["resource"], "the route pattern, for requests with a body too")
		// Every method of a route has the same resource.
		var created struct{ ID int64 }
		_, body := a.do(t, "POST", "/authors", admin, `{"name":"Routed"}`)
		require.NoError(t, json.Unmarshal(body, &created))
		for _, m := range []string{"PUT", "DELETE"} {
			res, body := a.do(t, m, fmt.Sprintf("/authors/%d", created.ID), admin, `{"name":"Routed again"}`)
			require.Less(t, res.StatusCode, 500, "%s", body)
		}
		var methods []string
		require.Eventually(t, func() bool {
			methods = methods[:0]
			for _, it := range a.auditLogs(t, admin, "resource=/authors/{id}&username=admin&per_page=10").Items {
				methods = append(methods, it["action_type"].(string))
			}
			return len(methods) >= 2
		}, 5*time.Second, 50*time.Millisecond)
		assert.ElementsMatch(t, []string{"HTTP:PUT", "HTTP:DELETE"}, methods)
		page = a.auditLogs(t, admin, "action_type=HTTP:PING")
		data, _ := json.Marshal(page.Items[0]["request_data"])
		assert.NotContains(t, string(data), "abc.def.ghi")
		assert.NotContains(t, string(data), `"x"`)

		page = a.auditLogs(t, admin, "action_type=WS:CONNECT&username=writer")
		assert.Equal(t, "success", page.Items[0]["outcome"])
		_, err = a.dialErr(t, writer+"x")
		require.Error(t, err)
		page = a.auditLogs(t, admin, "action_type=WS:AUTH_FAILED")
		assert.Equal(t, "error", page.Items[0]["outcome"])

		today := time.Now().UTC().Format(time.DateOnly)
		all := a.auditLogs(t, admin, "start_date="+today+"&end_date="+today)
		assert.GreaterOrEqual(t, all.Meta.Total, 5)
		// An offset: encoded, and with its "+" left unencoded (a space).
		from := time.Now().Add(-time.Hour).In(time.FixedZone("", 2*3600)).Format(time.RFC3339)
		require.Contains(t, from, "+02:00")
		for _, q := range []string{url.QueryEscape(from), from} {
			page := a.auditLogs(t, admin, "start_date="+q)
			assert.GreaterOrEqual(t, page.Meta.Total, all.Meta.Total, q) // rows only accumulate
		}
		res, body = a.do(t, "GET", "/audit-logs?end_date=2000-01-01", admin, "")
		require.Equal(t, 200, res.StatusCode)
		assert.Contains(t, string(body), `"total":0`)
		res, _ = a.do(t, "GET", "/audit-logs?start_date=yesterday", admin, "")
		assert.Equal(t, 400, res.StatusCode)
		res, _ = a.do(t, "GET", "/audit-logs?per_page=1001", admin, "")
		assert.Equal(t, 400, res.StatusCode)
		res, body = a.do(t, "GET", "/audit-logs?page=2147483648", admin, "")
		assert.Equal(t, 400, res.StatusCode)
		assert.Equal(t, "/page", httpError(t, body).Details[0].Path)
		res, _ = a.do(t, "GET", "/audit-logs", writer, "")
		assert.Equal(t, 403, res.StatusCode)

		id := fmt.Sprint(all.Items[0]["id"])
		res, body = a.do(t, "GET", "/audit-logs/"+url.PathEscape(id), admin, "")
		require.Equal(t, 200, res.StatusCode, "%s", body)
		res, _ = a.do(t, "GET", "/audit-logs/00000000-0000-0000-0000-000000000001", admin, "")
		assert.Equal(t, 404, res.StatusCode)
		res, _ = a.do(t, "GET", "/audit-logs/not-an-id", admin, "")
		assert.Equal(t, 404, res.StatusCode)

		// No bearer token anywhere: rows and logs.
		res, body = a.do(t, "GET", "/audit-logs?per_page=1000", admin, "")
		require.Equal(t, 200, res.StatusCode)
		for _, tok := range []string{admin, writer, reader} {
			assert.NotContains(t, string(body), tok)
			assert.NotContains(t, a.stderr.String(), tok)
		}
		assert.False(t, strings.Contains(string(body), "hunter2"))
	})
}

func (a *app) dialErr(t *testing.T, token string) (any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wstest.Dial(ctx, a.wsURL(), token)
	if err == nil {
		_ = c.Close()
	}
	return c, err
}

// TestAuditRefusalsAndConnections: refusals that never reach a handler are
// audited too - the HTTP rate limit's 429 for a route and for a package
// call over the bridge, a WebSocket message over its rate, a connection
// over the per-user cap - and so are WebSocket disconnects.
func TestAuditRefusalsAndConnections(t *testing.T) {
	a := startApp(t, map[string]string{
		"RATE_LIMIT_PER_MINUTE": "10", "WS_MESSAGE_RATE_LIMIT": "2", "WS_MAX_CONNECTIONS_PER_USER": "1",
		"AUDIT_BATCH_TIMEOUT": "20ms",
	})
	admin, writer := a.token(t, "admin"), a.token(t, "writer")

	for range 10 {
		res, _ := a.do(t, "POST", "/api/pkg/10", writer, `{"data":{}}`)
		require.Equal(t, 200, res.StatusCode)
	}
	res, _ := a.do(t, "POST", "/api/pkg/10", writer, `{"data":{}}`)
	require.Equal(t, 429, res.StatusCode)
	res, _ = a.do(t, "GET", "/authors", writer, "")
	require.Equal(t, 429, res.StatusCode)

	c := a.dial(t, writer)
	for range 2 {
		require.EqualValues(t, 0, call(t, c, int64(Ping), `{}`).StatusCode())
	}
	require.EqualValues(t, 4, call(t, c, int64(Ping), `{}`).StatusCode())
	_, err := a.dialErr(t, writer) // over the cap of 1
	require.Error(t, err)
	require.NoError(t, c.Close())

	want := map[string]string{ // action type -> outcome
		"HTTP:PING":           "rate_limited",
		"HTTP:GET":            "rate_limited",
		"WS:PING":             "rate_limited",
		"WS:CONNECTION_LIMIT": "rate_limited",
		"WS:DISCONNECT":       "success",
	}
	var rows []map[string]any
	require.Eventually(t, func() bool {
		res, body := a.do(t, "GET", "/audit-logs?per_page=1000&username=writer", admin, "")
		require.Equal(t, 200, res.StatusCode, "%s", body)
		var page auditPage
		require.NoError(t, json.Unmarshal(body, &page))
		rows = page.Items
		found := 0
		for action, outcome := range want {
			for _, r := range rows {
				if r["action_type"] == action && r["outcome"] == outcome {
					found++
					break
				}
			}
		}
		return found == len(want)
	}, 5*time.Second, 300*time.Millisecond, "audit rows: %v", rows)
	for _, r := range rows {
		if r["action_type"] == "HTTP:PING" && r["outcome"] == "rate_limited" {
			assert.Equal(t, "10", r["resource"])
			assert.EqualValues(t, 429, r["response_status"])
		}
	}

	// The message refused by the rate limit is a package reply too.
	res, body := a.do(t, "GET", "/metrics", "", "")
	require.Equal(t, 200, res.StatusCode)
	assert.Contains(t, string(body), `pkg_requests_total{pkg_id="10",status_code="4",transport="ws"} 1`)
}
