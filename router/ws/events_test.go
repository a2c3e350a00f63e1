package ws_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type eventLog struct {
	mu     sync.Mutex
	events []ws.Event
}

func (l *eventLog) add(_ context.Context, ev ws.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) list() []ws.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ws.Event(nil), l.events...)
}

func TestOnEvent(t *testing.T) {
	r := router.New[int32](router.Config{})
	r.Register(10, router.HandlerFunc[int32](func(ctx context.Context, req *router.Request[int32]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	var log eventLog
	authn := auth.AuthenticatorFunc(func(ctx context.Context, token string) (*auth.Principal, error) {
		if token != "good" {
			return nil, auth.ErrInvalidCredentials
		}
		return &auth.Principal{ID: "u1", Username: "ada", ExpiresAt: time.Now().Add(time.Hour)}, nil
	})
	ep := ws.New(r, ws.Config{Authenticator: authn, OnEvent: log.add, MessageRate: ratelimit.Rate{Limit: 1, Window: time.Minute}})
	srv := httptest.NewServer(ep)
	defer srv.Close()
	defer func() { require.NoError(t, ep.Shutdown(context.Background())) }()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err := wstest.Dial(ctx, url, "bad")
	require.Error(t, err)
	_, err = wstest.Dial(ctx, url, "good", wstest.WithHeader(http.Header{"Origin": {"https://evil.example"}}))
	require.Error(t, err)
	c, err := wstest.Dial(ctx, url, "good")
	require.NoError(t, err)
	_, err = c.Call(ctx, 10, nil)
	require.NoError(t, err)
	m, err := c.Call(ctx, 10, nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusRateLimited, m.StatusCode())
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return len(log.list()) == 5 }, 5*time.Second, 10*time.Millisecond)
	ev := log.list()
	assert.Equal(t, ws.EventRejected, ev[0].Type)
	assert.Equal(t, "auth", ev[0].Reason)
	assert.Equal(t, 401, ev[0].CloseCode)
	assert.Equal(t, "origin", ev[1].Reason)
	assert.Equal(t, ws.EventConnected, ev[2].Type)
	assert.Equal(t, "ada", ev[2].Principal.Username)
	assert.Equal(t, ws.EventRateLimited, ev[3].Type)
	assert.EqualValues(t, 10, ev[3].PkgID)
	assert.Equal(t, ws.EventDisconnected, ev[4].Type)
	assert.Equal(t, 1000, ev[4].CloseCode)
	assert.Equal(t, ev[2].ConnID, ev[4].ConnID)
}

// A first message refused for its frame reports the close code sent: 1003
// for a binary frame, 1007 for invalid UTF-8, 4001 for a bad auth frame.
func TestOnEventFirstMessageCloseCode(t *testing.T) {
	var log eventLog
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, OnEvent: log.add})
	tests := []struct {
		name string
		mt   int
		data string
		code int
	}{
		{"binary", websocket.BinaryMessage, `{"type":"auth","token":"Bearer user.ada"}`, websocket.CloseUnsupportedData},
		{"invalid utf-8", websocket.TextMessage, "{\"type\":\"auth\",\"token\":\"\xff\"}", websocket.CloseInvalidFramePayloadData},
		{"bad auth frame", websocket.TextMessage, `hello`, ws.CloseUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(log.list())
			raw := f.rawDial(nil)
			require.NoError(t, raw.WriteMessage(tt.mt, []byte(tt.data)))
			expectClose(t, raw, tt.code, "")
			eventually(t, func() bool { return len(log.list()) > before }, "event reported")
			ev := log.list()[before]
			assert.Equal(t, ws.EventRejected, ev.Type)
			assert.Equal(t, "auth", ev.Reason)
			assert.Equal(t, tt.code, ev.CloseCode, "the code on the wire")
			assert.NotEmpty(t, ev.ConnID)
		})
	}
}
