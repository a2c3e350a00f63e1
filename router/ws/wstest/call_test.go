package wstest_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
)

type pkgID int16

const echo pkgID = 7

func TestCallTakesTheAppsIDType(t *testing.T) {
	r := router.New[pkgID](router.Config{})
	r.Register(echo, router.HandlerFunc[pkgID](func(_ context.Context, req *router.Request[pkgID]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	e := ws.New(r, ws.Config{Authenticator: auth.AuthenticatorFunc(func(_ context.Context, tok string) (*auth.Principal, error) {
		return &auth.Principal{ID: tok}, nil
	})})
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, e.Shutdown(ctx))
		srv.Close()
	})

	ctx := context.Background()
	c, err := wstest.Dial(ctx, wstest.URL(srv.URL, "/"), "ada")
	require.NoError(t, err)
	defer c.Close()
	m, err := wstest.Call(ctx, c, echo, map[string]string{"a": "b"})
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())
	assert.EqualValues(t, echo, m.PkgID)
	assert.JSONEq(t, `{"a":"b"}`, string(m.Data))
}

func TestURL(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"http://127.0.0.1:1234", "/web"}:   "ws://127.0.0.1:1234/web",
		{"https://example.com/", "/web"}:    "wss://example.com/web",
		{"ws://already:1", "/web"}:          "ws://already:1/web",
		{"http://h:1/prefix", "/api/x/web"}: "ws://h:1/prefix/api/x/web",
	} {
		assert.Equal(t, want, wstest.URL(in[0], in[1]), in)
	}
}
