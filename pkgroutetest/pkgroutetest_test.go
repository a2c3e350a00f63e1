package pkgroutetest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/pkgroutetest"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/server"
)

type PkgID int16

const (
	Shout PkgID = 1
	List  PkgID = 2
	Admin PkgID = 3
)

type ShoutIn struct {
	Text string `json:"text"`
}

type ShoutOut struct {
	Text string `json:"text"`
}

func newRouter() *router.PackageRouter[PkgID] {
	r := router.New[PkgID](router.Config{})
	router.Handle(r, Shout, func(ctx context.Context, in ShoutIn) (ShoutOut, error) {
		return ShoutOut{Text: strings.ToUpper(in.Text)}, nil
	}, router.Roles("shout"), router.Schema(`{"type":"object","properties":{"text":{"type":"string","minLength":1}},"required":["text"]}`))
	router.Handle(r, List, func(ctx context.Context, p repository.Page) (repository.Result[string], error) {
		return repository.Result[string]{Items: []string{"a", "b"}, Meta: repository.Meta{Page: 1, PerPage: 2, Total: 3, Pages: 2, HasMore: true}}, nil
	}, router.Authenticated(), router.Paginated())
	router.Handle(r, Admin, func(context.Context, struct{}) (struct{}, error) { return struct{}{}, nil }, router.Roles("admin"))
	return r
}

func TestInProcess(t *testing.T) {
	r := newRouter()
	out := pkgroutetest.Call[ShoutOut](t, r, Shout, ShoutIn{Text: "hi"}, "shout")
	assert.Equal(t, ShoutOut{Text: "HI"}, out)

	pkgroutetest.Send(t, r, Shout, ShoutIn{Text: "hi"}, "other").RequireCode(t, "permission_denied")
	pkgroutetest.Send(t, r, Shout, ShoutIn{}, "shout").RequireCode(t, "invalid_data")
	pkgroutetest.SendAs(t, r, Shout, ShoutIn{Text: "x"}, nil).RequireCode(t, "permission_denied")
	pkgroutetest.Send(t, r, PkgID(99), struct{}{}).RequireStatus(t, router.StatusError)

	page := pkgroutetest.Call[repository.Result[string]](t, r, List, repository.Offset(1, 2))
	assert.Equal(t, []string{"a", "b"}, page.Items)
	assert.Equal(t, 3, page.Meta.Total)
}

func TestLoopbackServer(t *testing.T) {
	srv := pkgroutetest.NewServer(t, newRouter(), server.Config{})
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"))
	require.Equal(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/web", srv.WSURL)

	c := srv.Dial("shout")
	out := pkgroutetest.Decode[ShoutOut](t, pkgroutetest.SendWS(t, c, Shout, ShoutIn{Text: "ws"}))
	assert.Equal(t, "WS", out.Text)
	pkgroutetest.SendWS(t, c, Admin, struct{}{}).RequireCode(t, "permission_denied")

	out = pkgroutetest.Decode[ShoutOut](t, srv.SendHTTP(t, Shout, ShoutIn{Text: "http"}, "shout"))
	assert.Equal(t, "HTTP", out.Text)
	srv.SendHTTP(t, Admin, nil, "shout").RequireCode(t, "permission_denied")

	resp := srv.Do(http.MethodGet, "/api/pkg/1", nil).RequireStatus(t, http.StatusMethodNotAllowed)
	assert.NotEmpty(t, resp.Header.Get("X-Content-Type-Options"))
	srv.Do(http.MethodPost, "/api/pkg/1", `{"data":{"text":"x"}}`, "shout").RequireStatus(t, http.StatusOK)
	bad := srv.Do(http.MethodGet, "/api/packages", nil)
	bad.RequireStatus(t, http.StatusOK)
	srv.Do(http.MethodGet, "/live", nil).RequireStatus(t, http.StatusOK)

	login := srv.Do(http.MethodPost, "/auth/login", `{"username":"nobody","password":"x"}`)
	login.RequireStatus(t, http.StatusUnauthorized)
	assert.Equal(t, "authentication_failed", login.ErrorCode())
}
