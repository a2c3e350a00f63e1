package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (a *app) wsURL() string { return "ws" + strings.TrimPrefix(a.base, "http") + "/web" }

func (a *app) dial(t *testing.T, token string, opts ...wstest.Option) *wstest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wstest.Dial(ctx, a.wsURL(), token, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func call(t *testing.T, c *wstest.Client, pkg int64, data string) *wstest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Call(ctx, pkg, json.RawMessage(data))
	require.NoError(t, err)
	return m
}

func TestWebSocketPackagesAndPush(t *testing.T) {
	databases(t, func(t *testing.T, dsn string) {
		a := startApp(t, map[string]string{"DATABASE_URL": dsn})
		writer := a.dial(t, a.token(t, "writer"))
		reader := a.dial(t, a.token(t, "reader"), wstest.FirstMessage())
		require.NotNil(t, reader.AuthOK())
		assert.Equal(t, "reader", reader.AuthOK().User)
		adminTok := a.token(t, "admin")

		m := call(t, writer, 10, `{"hello":"world"}`)
		assert.Equal(t, router.StatusOK, m.StatusCode())
		assert.JSONEq(t, `{"hello":"world"}`, string(m.Data))

		// Create over WebSocket: the reply to the creator, the push to every
		// get-authors connection (the creator's own included).
		m = call(t, writer, 3, `{"name":"Ada"}`)
		require.Equal(t, router.StatusOK, m.StatusCode(), "%s", m.Raw)
		var ada Author
		require.NoError(t, json.Unmarshal(m.Data, &ada))
		for _, c := range []*wstest.Client{writer, reader} {
			push := next(t, c)
			assert.True(t, push.IsPush())
			assert.EqualValues(t, AuthorCreated, push.PkgID)
			assert.Equal(t, fmt.Sprintf(`{"pkg_id":100,"req_id":"00000000-0000-0000-0000-000000000000","data":{"id":%d,"name":"Ada"}}`, ada.ID), string(push.Raw))
		}
		// Create over HTTP pushes too.
		res, body := a.do(t, "POST", "/authors", adminTok, `{"name":"Grace"}`)
		require.Equal(t, 201, res.StatusCode, "%s", body)
		push := next(t, reader)
		assert.Contains(t, string(push.Data), `"name":"Grace"`)

		m = call(t, reader, 3, `{"name":"x"}`)
		assert.Equal(t, router.StatusPermissionDenied, m.StatusCode())
		m = call(t, reader, 99, `{}`)
		assert.Equal(t, router.StatusError, m.StatusCode())
		assert.Equal(t, "unknown_package", m.Error().Code)
		m = call(t, reader, 2, `{"per_page":5}`)
		assert.Equal(t, router.StatusOK, m.StatusCode())
		assert.JSONEq(t, `{"page":1,"per_page":5,"total":2,"pages":1,"next_cursor":null,"has_more":false}`, string(m.Meta))
	})
}

func next(t *testing.T, c *wstest.Client) *wstest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Next(ctx)
	require.NoError(t, err)
	return m
}

// TestParityWebSocketAndBridge runs every registered package once over
// WebSocket and once over the HTTP bridge, with the same caller and data,
// and compares the status codes and data (ids and timestamps aside).
func TestParityWebSocketAndBridge(t *testing.T) {
	a := startApp(t, nil)
	tok := a.token(t, "admin")
	c := a.dial(t, tok)
	cases := map[PkgID][]string{
		GetAuthors:          {`{}`, `{"search_term":"par"}`, `{"id":0}`},
		GetPaginatedAuthors: {`{"per_page":1}`, `{"page":0}`},
		CreateAuthor:        {`{"name":"parity-%s"}`, `{"name":""}`, `{"name":"taken"}`},
		UpdateAuthor:        {`{"id":999999,"name":"nobody-%s"}`, `{"id":1}`},
		DeleteAuthor:        {`{"id":999999}`},
		Ping:                {`{"a":[1,2,3]}`},
	}
	res, _ := a.do(t, "POST", "/authors", tok, `{"name":"taken"}`)
	require.Equal(t, 201, res.StatusCode)
	_ = next(t, c) // its push
	covered := map[PkgID]bool{}
	for id, inputs := range cases {
		covered[id] = true
		for _, in := range inputs {
			wsData := strings.ReplaceAll(in, "%s", "ws")
			httpData := strings.ReplaceAll(in, "%s", "http")
			m := call(t, c, int64(id), wsData)
			code, rep, _ := a.pkg(t, tok, int(id), httpData)
			assert.Equal(t, int(m.StatusCode()), rep.StatusCode, "pkg %d %s", id, in)
			assert.Equal(t, router.HTTPStatus(router.Response{Status: m.StatusCode(), Data: m.Error()}), code, "pkg %d %s", id, in)
			assert.Equal(t, normalize(t, m.Data), normalize(t, rep.Data), "pkg %d %s", id, in)
			if id == CreateAuthor && m.StatusCode() == router.StatusOK {
				_ = next(t, c)
				_ = next(t, c)
			}
		}
	}
	for _, rt := range registeredRoutes(t) {
		assert.True(t, covered[rt], "package %d has no parity case", rt)
	}
}

func registeredRoutes(t *testing.T) []PkgID {
	t.Helper()
	r := router.New[PkgID](router.Config{})
	registerPackages(r, listingCommands())
	var ids []PkgID
	for _, rt := range r.Routes() {
		ids = append(ids, rt.ID)
	}
	return ids
}

// normalize removes ids, timestamps and the names that differ by transport.
func normalize(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch k {
				case "id", "created_at", "updated_at":
					x[k] = "*"
				case "name", "msg":
					if s, ok := e.(string); ok {
						x[k] = strings.NewReplacer("-ws", "-*", "-http", "-*").Replace(s)
					}
				default:
					x[k] = walk(e)
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	return walk(v)
}

func TestWebSocketRefusals(t *testing.T) {
	a := startApp(t, map[string]string{"WS_MAX_CONNECTIONS_PER_USER": "1", "WS_AUTH_TIMEOUT_SECONDS": "1"})
	tok := a.token(t, "reader")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err := wstest.Dial(ctx, a.wsURL(), tok+"x")
	var he *wstest.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 401, he.StatusCode)
	assert.Equal(t, `Bearer error="invalid_token"`, he.Header.Get("WWW-Authenticate"))

	first := a.dial(t, tok)
	_, err = wstest.Dial(ctx, a.wsURL(), tok)
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 429, he.StatusCode)
	assert.NotEmpty(t, he.Header.Get("Retry-After"))
	_ = first

	// First-message mode: a bare JWT without the scheme is refused with 4001.
	c, err := wstest.Dial(ctx, a.wsURL(), "")
	require.NoError(t, err)
	require.NoError(t, c.Send(ctx, []byte(`{"type":"auth","token":"`+tok+`"}`)))
	ce, err := c.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4001, ce.Code)

	// Nothing sent within the timeout: 4002.
	c, err = wstest.Dial(ctx, a.wsURL(), "")
	require.NoError(t, err)
	ce, err = c.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4002, ce.Code)
	assert.Equal(t, "auth timeout", ce.Text)
}

func TestGracefulShutdownDeliversAndCloses1001(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	vars := map[string]string{"HTTP_ADDR": addr, "DATABASE_URL": "sqlite::memory:", "RATE_LIMIT_PER_MINUTE": "100000"}
	a := &app{base: "http://" + addr, stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"authorsvc"}, func(k string) string { return vars[k] }, a.stdout, a.stderr)
	}()
	require.Eventually(t, func() bool { res, err := httpGet(a.base + "/health"); return err == nil && res == 200 }, 10*time.Second, 20*time.Millisecond)
	c := a.dial(t, a.token(t, "writer"))
	call(t, c, 10, `{}`)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(12 * time.Second):
		t.Fatal("run did not return")
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	ce, err := c.Wait(wctx)
	if err != nil && !errors.Is(err, wstest.ErrClosed) {
		require.NoError(t, err)
	}
	require.NotNil(t, ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
}
