package wstest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func server(t *testing.T) (*ws.Endpoint[int32], string) {
	r := router.New[int32](router.Config{})
	r.Register(1, router.HandlerFunc[int32](func(ctx context.Context, req *router.Request[int32]) router.Response {
		time.Sleep(time.Millisecond)
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	e := ws.New(r, ws.Config{Authenticator: auth.AuthenticatorFunc(func(_ context.Context, tok string) (*auth.Principal, error) {
		if tok == "bad" {
			return nil, auth.ErrInvalidCredentials
		}
		return &auth.Principal{ID: tok, Username: tok}, nil
	}), CloseGrace: 200 * time.Millisecond})
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, e.Shutdown(ctx))
		srv.Close()
	})
	return e, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestConcurrentCallsMatchReplies(t *testing.T) {
	_, url := server(t)
	ctx := context.Background()
	for _, opts := range [][]wstest.Option{nil, {wstest.FirstMessage()}} {
		c, err := wstest.Dial(ctx, url, "ada", opts...)
		require.NoError(t, err)
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Go(func() {
				m, err := c.Call(ctx, 1, map[string]int{"i": i})
				if assert.NoError(t, err) {
					assert.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i), string(m.Data))
				}
			})
		}
		wg.Wait()
		require.NoError(t, c.Close())
		_, err = c.Call(ctx, 1, nil)
		require.ErrorIs(t, err, wstest.ErrClosed)
	}
}

func TestServerCloseIsReported(t *testing.T) {
	e, url := server(t)
	ctx := context.Background()
	_, err := wstest.Dial(ctx, url, "bad", wstest.FirstMessage())
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, ws.CloseUnauthorized, ce.Code)

	_, err = wstest.Dial(ctx, url, "bad")
	var he *wstest.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 401, he.StatusCode)

	c, err := wstest.Dial(ctx, url, "ada")
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, e.Shutdown(ctx))
	got, err := c.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, websocket.CloseGoingAway, got.Code)
	_, err = c.Next(ctx)
	assert.True(t, errors.Is(err, wstest.ErrClosed))
}
