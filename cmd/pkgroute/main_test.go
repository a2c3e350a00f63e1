package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	code, _, stderr := runCLI(t)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "load")
	code, stdout, _ := runCLI(t, "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "usage: pkgroute <command>")
	code, _, stderr = runCLI(t, "nope")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `unknown command "nope"`)
	code, _, stderr = runCLI(t, "load", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stderr, "-allow-remote")
}

func TestLoadFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "0"}, "-c and -k must be at least 1"},
		{[]string{"-k", "-3"}, "-c and -k must be at least 1"},
		{[]string{"-duration", "11m"}, "duration must be"},
		{[]string{"-protocol", "mqtt"}, "protocol must be"},
		{[]string{"-data", "[1]"}, "data must be a JSON object"},
		{[]string{"-url", "http://127.0.0.1/web"}, "ws:// or wss://"},
		{[]string{"-idle", "-n", "5"}, "idle mode sends no requests"},
		{[]string{"-bogus"}, "flag provided but not defined"},
		{[]string{"stray"}, "unexpected arguments"},
	} {
		code, _, stderr := runCLI(t, append([]string{"load"}, tc.args...)...)
		assert.Equal(t, 2, code, "%v", tc.args)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
	}
	code, _, stderr := runCLI(t, "load", "-url", "ws://192.0.2.1/web", "-token", "x")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "not a loopback address")
}

// echo answers each pkgroute request with a status 0 reply.
func echo(t *testing.T) string {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			var env struct {
				PkgID int             `json:"pkg_id"`
				ReqID string          `json:"req_id"`
				Data  json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(msg, &env); err != nil {
				return
			}
			out, _ := json.Marshal(map[string]any{"pkg_id": env.PkgID, "req_id": env.ReqID})
			out = append(out[:len(out)-1], `,"status_code":0,"meta":null,"data":`...)
			out = append(append(out, env.Data...), '}')
			if err := c.WriteMessage(websocket.TextMessage, out); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestLoadRuns(t *testing.T) {
	url := echo(t)
	code, stdout, stderr := runCLI(t, "load", "-url", url, "-token", "tok", "-c", "2", "-k", "3", "-n", "30", "-json")
	require.Equal(t, 0, code, stderr)
	var rep struct {
		Completed, OK int64
		Latency       map[string]float64
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
	assert.EqualValues(t, 30, rep.Completed)
	assert.EqualValues(t, 30, rep.OK)
	assert.Contains(t, rep.Latency, "p99_us")

	code, stdout, stderr = runCLI(t, "load", "-url", url, "-token", "tok", "-n", "5", "-data", `{"a":1}`, "-size", "10")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "completed 5 (ok 5)")
	assert.Contains(t, stdout, "p50")

	code, stdout, _ = runCLI(t, "load", "-url", url, "-token", "wrong", "-n", "5")
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "http 401: 1")
}
