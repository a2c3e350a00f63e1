package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/stretchr/testify/require"
)

type pkg int32

const (
	pkgPing    pkg = 10 // echoes its data
	pkgInvalid pkg = 11 // always invalid_data
	pkgAdmin   pkg = 12 // needs role admin
	pkgReverse pkg = 13 // answers each group of reverseGroup requests last first
)

const reverseGroup = 4

// tokenAuth accepts "user.<name>[.role~role]" without cryptography.
var tokenAuth = auth.AuthenticatorFunc(func(ctx context.Context, token string) (*auth.Principal, error) {
	parts := strings.Split(token, ".")
	if len(parts) < 2 || parts[0] != "user" {
		return nil, auth.ErrInvalidCredentials
	}
	p := &auth.Principal{ID: "id-" + parts[1], Username: parts[1]}
	if len(parts) > 2 && parts[2] != "" {
		p.Roles = strings.Split(parts[2], "~")
	}
	return p, nil
})

// reverser holds requests until reverseGroup of them arrived, then lets
// the last one answer first, each releasing the one before it.
type reverser struct {
	mu    sync.Mutex
	group []chan struct{}
	calls int
}

func (rv *reverser) serve(ctx context.Context, req *router.Request[pkg]) router.Response {
	rv.mu.Lock()
	rv.calls++
	me := make(chan struct{})
	var prev chan struct{}
	if n := len(rv.group); n > 0 {
		prev = rv.group[n-1]
	}
	rv.group = append(rv.group, me)
	full := len(rv.group) == reverseGroup
	if full {
		rv.group = nil
	}
	rv.mu.Unlock()
	if full {
		close(me)
	}
	if prev != nil {
		defer close(prev)
	}
	select {
	case <-me:
		return router.Response{Data: req.Data}
	case <-ctx.Done():
		return router.Fail(ctx.Err())
	}
}

type testServer struct {
	url, base string
	rev       *reverser
}

// startServer serves a pkgroute endpoint at /web, a login at /auth/login
// (ada/secret: token user.ada) and /metrics on a loopback server.
func startServer(t *testing.T, cfg ws.Config) *testServer {
	t.Helper()
	s := &testServer{rev: &reverser{}}
	r := router.New[pkg](router.Config{})
	r.Register(pkgPing, router.HandlerFunc[pkg](func(ctx context.Context, req *router.Request[pkg]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	r.Register(pkgInvalid, router.HandlerFunc[pkg](func(ctx context.Context, req *router.Request[pkg]) router.Response {
		return router.Fail(router.InvalidData("never valid"))
	}), router.Authenticated())
	r.Register(pkgAdmin, router.HandlerFunc[pkg](func(ctx context.Context, req *router.Request[pkg]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Roles("admin"))
	r.Register(pkgReverse, router.HandlerFunc[pkg](s.rev.serve), router.Authenticated())
	cfg.Authenticator = tokenAuth
	if cfg.MessageRate == (ratelimit.Rate{}) {
		cfg.MessageRate = ratelimit.Rate{Limit: -1}
	}
	if cfg.MaxConnsPerUser == 0 {
		cfg.MaxConnsPerUser = -1
	}
	cfg.CloseGrace = 300 * time.Millisecond
	e := ws.New(r, cfg)
	mux := http.NewServeMux()
	mux.Handle("/web", e)
	mux.HandleFunc("POST /auth/login", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username, Password string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.Username != "ada" || in.Password != "secret" {
			http.Error(w, `{"error":{"code":"authentication_failed"}}`, http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"access_token":"user.ada","token_type":"Bearer"}`))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 7\n"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, e.Shutdown(ctx))
		srv.Close()
	})
	s.base = srv.URL
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http") + "/web"
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
