package ws_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
)

func Example() {
	type PkgID int32
	const Ping, Notice PkgID = 10, 100

	r := router.New[PkgID](router.Config{})
	r.Register(Ping, router.HandlerFunc[PkgID](func(ctx context.Context, req *router.Request[PkgID]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())

	// Any auth.Authenticator; auth/keycloak's verifier in a real app.
	verifier := auth.AuthenticatorFunc(func(ctx context.Context, token string) (*auth.Principal, error) {
		if token != "ada-token" {
			return nil, auth.ErrInvalidCredentials
		}
		return &auth.Principal{ID: "u1", Username: "ada", ExpiresAt: time.Unix(4102444800, 0)}, nil
	})
	endpoint := ws.New(r, ws.Config{Authenticator: verifier})
	mux := http.NewServeMux()
	mux.Handle("/web", endpoint)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer endpoint.Shutdown(context.Background()) // before the server's own shutdown

	ctx := context.Background()
	c, err := wstest.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/web", "ada-token", wstest.FirstMessage())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println("auth_ok for", c.AuthOK().User)

	reply, _ := c.Call(ctx, int64(Ping), map[string]string{"hello": "world"})
	fmt.Println(reply.StatusCode(), string(reply.Data))

	_ = endpoint.PushToUser(ctx, "u1", Notice, map[string]int{"unread": 3})
	push, _ := c.Next(ctx)
	fmt.Println(string(push.Raw))
	// Output:
	// auth_ok for ada
	// OK {"hello":"world"}
	// {"pkg_id":100,"req_id":"00000000-0000-0000-0000-000000000000","data":{"unread":3}}
}
