package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPkgrouteRequestIDs(t *testing.T) {
	cfg, err := LoadConfig{URL: "ws://127.0.0.1/web", PkgID: 7, Data: []byte(`{"a":1}`)}.withDefaults()
	require.NoError(t, err)
	c := newPkgrouteCodec(&cfg, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	other := newPkgrouteCodec(&cfg, [8]byte{9, 9, 9, 9, 9, 9, 9, 9})
	for _, id := range []uint64{0, 1, 255, 1 << 40, idMask} {
		frame := c.appendRequest(nil, id)
		assert.True(t, bytes.HasPrefix(frame, []byte(`{"pkg_id":7,"req_id":"`)), "%s", frame)
		assert.True(t, bytes.HasSuffix(frame, []byte(`","data":{"a":1}}`)), "%s", frame)
		u := frame[len(`{"pkg_id":7,"req_id":"`):][:36]
		parsed, err := uuid.ParseBytes(u)
		require.NoError(t, err)
		assert.Equal(t, uuid.Version(4), parsed.Version())
		assert.Equal(t, uuid.RFC4122, parsed.Variant())
		assert.Equal(t, strings.ToLower(string(u)), string(u))
		got, ok := c.idOf(u)
		assert.True(t, ok)
		assert.Equal(t, id, got)
		_, ok = other.idOf(u)
		assert.False(t, ok, "another connection's id")
	}
}

func TestPkgrouteParse(t *testing.T) {
	cfg, err := LoadConfig{URL: "ws://127.0.0.1/web"}.withDefaults()
	require.NoError(t, err)
	c := newPkgrouteCodec(&cfg, [8]byte{})
	u := string(c.appendUUID(nil, 42))
	var got []reply
	collect := func(r reply) { got = append(got, r) }
	c.parse([]byte(`{"type":"auth_ok","user":"ada","expires_at":1}`), collect)
	c.parse([]byte(`{"pkg_id":100,"req_id":"00000000-0000-0000-0000-000000000000","data":{"status_code":1}}`), collect)
	assert.Empty(t, got, "auth_ok and pushes are no replies")
	c.parse([]byte(`{"pkg_id":10,"req_id":"`+u+`","status_code":0,"meta":null,"data":{"req_id":"x"}}`), collect)
	c.parse([]byte(`{"pkg_id":10,"req_id":"`+u+`","status_code":3,"meta":null,"data":{"code":"permission_denied","msg":"x","details":null}}`), collect)
	c.parse([]byte(`{"pkg_id":0,"req_id":"00000000-0000-0000-0000-000000000000","status_code":2,"meta":null,"data":{"code":"invalid_request"}}`), collect)
	require.Len(t, got, 3)
	assert.Equal(t, reply{id: 42, matched: true}, got[0])
	assert.Equal(t, reply{id: 42, matched: true, status: 3, code: "permission_denied"}, got[1])
	assert.Equal(t, reply{status: 2, code: "invalid_request"}, got[2])
}

func TestCentrifugeParse(t *testing.T) {
	cfg, err := LoadConfig{URL: "ws://127.0.0.1/web", Protocol: ProtocolCentrifuge, Method: "echo"}.withDefaults()
	require.NoError(t, err)
	c := newCentrifugeCodec(&cfg)
	assert.Equal(t, `{"id":5,"rpc":{"method":"echo","data":{}}}`, string(c.appendRequest(nil, 3)))
	var got []reply
	collect := func(r reply) { got = append(got, r) }
	assert.Nil(t, c.parse([]byte("{}"), collect), "no pong unless asked for")
	c.pong = true
	pong := c.parse([]byte("{\"id\":2,\"rpc\":{\"data\":{}}}\n{}\n{\"id\":4,\"error\":{\"code\":103,\"message\":\"permission denied\"}}\n{\"push\":{\"channel\":\"x\"}}\n{\"rpc\":{},\"id\":5}"), collect)
	assert.Equal(t, "{}", string(pong))
	assert.Equal(t, []reply{
		{id: 0, matched: true},
		{id: 2, matched: true, status: 1, code: "centrifuge_103"},
		{id: 3, matched: true},
	}, got)
}

// fakeCentrifuge speaks the JSON protocol: it answers connect (asking
// for pongs), pings once before the first rpc reply, answers rpcs two per
// frame and fails every fifth.
func fakeCentrifuge(t *testing.T) (url string, pongs func() int) {
	var mu sync.Mutex
	pongCount := 0
	up := websocket.Upgrader{Subprotocols: []string{"centrifuge-json"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		var batch []string
		pinged := false
		n := 0
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			s := string(msg)
			switch {
			case s == "{}":
				mu.Lock()
				pongCount++
				mu.Unlock()
				continue
			case strings.Contains(s, `"connect"`):
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"connect":{"client":"c1","version":"0.0.0","ping":25,"pong":true}}`))
				continue
			}
			if !pinged {
				pinged = true
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{}`))
			}
			id := s[len(`{"id":`):strings.IndexByte(s, ',')]
			n++
			if n%5 == 0 {
				batch = append(batch, `{"id":`+id+`,"error":{"code":106,"message":"limit exceeded"}}`)
			} else {
				data := s[strings.Index(s, `"data":`)+len(`"data":`) : len(s)-2]
				batch = append(batch, `{"id":`+id+`,"rpc":{"data":`+data+`}}`)
			}
			if n%2 == 0 {
				_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Join(batch, "\n")))
				batch = batch[:0]
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/connection/websocket", func() int {
		mu.Lock()
		defer mu.Unlock()
		return pongCount
	}
}

func TestLoadCentrifuge(t *testing.T) {
	url, pongs := fakeCentrifuge(t)
	// An even number of requests: the fake server's last frame fills.
	rep, err := RunLoad(ctxT(t), LoadConfig{
		URL: url, Protocol: ProtocolCentrifuge, Auth: AuthNone, Method: "echo",
		Conns: 1, InFlight: 3, Requests: 60, Duration: time.Minute, Data: []byte(`{"x":"y"}`),
	})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Connected)
	assert.EqualValues(t, 60, rep.Completed)
	assert.EqualValues(t, 48, rep.OK)
	assert.Equal(t, map[string]int64{"centrifuge_106": 12}, rep.ErrorCodes)
	assert.Zero(t, rep.Unmatched)
	assert.Zero(t, rep.Unanswered)
	assert.Equal(t, 1, pongs())
	assert.EqualValues(t, 31, rep.Frames, "30 frames of two replies, one ping")
}

func TestCentrifugeConnectError(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"error":{"code":101,"message":"unauthorized"}}`))
		_, _, _ = c.ReadMessage()
	}))
	defer srv.Close()
	rep, err := RunLoad(ctxT(t), LoadConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Protocol: ProtocolCentrifuge, Token: "t", Conns: 2, Duration: time.Minute})
	require.ErrorIs(t, err, ErrNoConnections)
	assert.Equal(t, map[string]int64{"connect error 101": 2}, rep.DialErrors)
}

func TestHandshakeTimeout(t *testing.T) {
	// A server that upgrades and never answers the auth frame.
	up := websocket.Upgrader{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	rep, err := RunLoad(ctx, LoadConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Auth: AuthFirstMessage, Token: "t",
		DialTimeout: 50 * time.Millisecond, Duration: time.Minute})
	require.ErrorIs(t, err, ErrNoConnections)
	assert.Equal(t, map[string]int64{"dial: timeout": 1}, rep.DialErrors)
}

// A server that stops reading blocks the writers once the socket buffers
// are full: the run still ends, its requests counted as unanswered.
func TestLoadEndsWhenServerStopsReading(t *testing.T) {
	up := websocket.Upgrader{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	rep, err := RunLoad(ctxT(t), LoadConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Auth: AuthNone,
		InFlight: 256, Size: 1 << 20, Duration: 100 * time.Millisecond, DrainTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	assert.Positive(t, rep.Sent)
	assert.Zero(t, rep.Completed)
	assert.Equal(t, rep.Sent, rep.Unanswered)
}
