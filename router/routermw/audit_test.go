package routermw_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/routermw"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type PkgID int32

const (
	pkgOK      PkgID = 1
	pkgAdmin   PkgID = 2
	pkgLimited PkgID = 3
	pkgFails   PkgID = 4
	pkgSchema  PkgID = 5
	pkgPing    PkgID = 6
	pkgMeta    PkgID = 7
)

// capture is a sink that keeps what it is given.
type capture struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (c *capture) Write(_ context.Context, es []audit.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, es...)
	return nil
}

func (c *capture) all() []audit.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]audit.Entry(nil), c.entries...)
}

func newRouter(mw ...router.Middleware[PkgID]) *router.PackageRouter[PkgID] {
	r := router.New[PkgID](router.Config{})
	r.Use(mw...)
	r.Register(pkgOK, router.HandlerFunc[PkgID](func(context.Context, *router.Request[PkgID]) router.Response {
		return router.Response{Data: map[string]int{"n": 1}}
	}), router.Authenticated(), router.Name("GET_THINGS"))
	r.Register(pkgAdmin, router.HandlerFunc[PkgID](func(context.Context, *router.Request[PkgID]) router.Response {
		return router.Response{}
	}), router.Roles("admin"), router.Name("ADMIN_ONLY"))
	r.Register(pkgLimited, router.HandlerFunc[PkgID](func(context.Context, *router.Request[PkgID]) router.Response {
		return router.Fail(router.NewError(router.StatusRateLimited, router.CodeRateLimitExceeded, "slow down"))
	}), router.Public(), router.Name("LIMITED"))
	r.Register(pkgFails, router.HandlerFunc[PkgID](func(context.Context, *router.Request[PkgID]) router.Response {
		return router.Fail(errors.New("database password=hunter2 exploded"))
	}), router.Public(), router.Name("FAILS"))
	r.Register(pkgSchema, router.HandlerFunc[PkgID](func(context.Context, *router.Request[PkgID]) router.Response {
		return router.Response{}
	}), router.Public(), router.Name("STRICT"), router.Schema(`{"type":"object","required":["name"]}`))
	r.Register(pkgPing, router.HandlerFunc[PkgID](func(context.Context, *router.Request[PkgID]) router.Response {
		return router.Response{}
	}), router.Public(), router.Name("PING"), router.Audit(router.AuditNone))
	r.Register(pkgMeta, router.HandlerFunc[PkgID](func(context.Context, *router.Request[PkgID]) router.Response {
		return router.Response{}
	}), router.Public(), router.Name("LOGIN_LIKE"), router.Audit(router.AuditMetadata))
	return r
}

var alice = &auth.Principal{ID: "u-1", Username: "alice", Roles: []string{"reader"}}

func envelope(pkg PkgID, data string) []byte {
	return []byte(`{"pkg_id":` + strconv.Itoa(int(pkg)) + `,"req_id":"` + uuid.NewString() + `","data":` + data + `}`)
}

func TestAuditOutcomesOverWebSocket(t *testing.T) {
	sink := &capture{}
	l := audit.New(audit.Config{Sink: sink})
	r := newRouter(routermw.Audit[PkgID](l, routermw.AuditConfig{}))
	ctx := router.WithTransport(context.Background(), "ws")
	ctx = audit.WithRequestInfo(ctx, audit.RequestInfo{IP: "192.0.2.7", UserAgent: "ua/1", RequestID: "corr-1"})

	tests := []struct {
		pkg     PkgID
		data    string
		action  string
		outcome audit.Outcome
		status  int
		errMsg  string
	}{
		{pkgOK, `{"q":"x","password":"p"}`, "WS:GET_THINGS", audit.Success, 0, ""},
		{pkgAdmin, `{}`, "WS:ADMIN_ONLY", audit.PermissionDenied, 3, "permission_denied: No permission for pkg_id 2"},
		{pkgLimited, `{}`, "WS:LIMITED", audit.RateLimited, 4, "rate_limit_exceeded: slow down"},
		{pkgFails, `{}`, "WS:FAILS", audit.Error, 1, "internal_error: Internal server error"},
		{pkgSchema, `{}`, "WS:STRICT", audit.Error, 2, "invalid_data: data does not match the schema of pkg_id 5"},
	}
	for _, tt := range tests {
		r.Dispatch(ctx, alice, envelope(tt.pkg, tt.data))
	}
	r.Dispatch(ctx, alice, envelope(pkgPing, `{}`)) // AuditNone
	r.Dispatch(ctx, alice, envelope(pkgMeta, `{"secret":"s"}`))
	r.Dispatch(ctx, alice, envelope(9, `{}`)) // unknown packages never reach middleware
	require.NoError(t, l.Close(context.Background()))

	got := sink.all()
	require.Len(t, got, len(tests)+1)
	meta := got[len(got)-1]
	assert.Equal(t, "WS:LOGIN_LIKE", meta.ActionType)
	assert.Nil(t, meta.RequestData, "AuditMetadata records no data")
	assert.Equal(t, "alice", meta.Username)
	got = got[:len(got)-1]
	byAction := map[string]audit.Entry{}
	for _, e := range got {
		byAction[e.ActionType] = e
	}
	for _, tt := range tests {
		e, ok := byAction[tt.action]
		require.True(t, ok, tt.action)
		assert.Equal(t, tt.outcome, e.Outcome, tt.action)
		require.NotNil(t, e.ResponseStatus)
		assert.Equal(t, tt.status, *e.ResponseStatus, tt.action)
		if tt.errMsg != "" {
			assert.True(t, strings.HasPrefix(e.ErrorMessage, tt.errMsg), "%s: %q", tt.action, e.ErrorMessage)
		} else {
			assert.Empty(t, e.ErrorMessage)
		}
		assert.NotContains(t, e.ErrorMessage, "hunter2")
		assert.Equal(t, "u-1", e.UserID)
		assert.Equal(t, "alice", e.Username)
		assert.Equal(t, []string{"reader"}, e.UserRoles)
		assert.Equal(t, "192.0.2.7", e.IPAddress)
		assert.Equal(t, "ua/1", e.UserAgent)
		assert.Equal(t, "corr-1", e.RequestID)
		assert.Equal(t, strconv.Itoa(int(tt.pkg)), e.Resource)
	}
	assert.JSONEq(t, `{"q":"x","password":"[REDACTED]"}`, string(byAction["WS:GET_THINGS"].RequestData))
}

func TestAuditOverHTTPBridge(t *testing.T) {
	sink := &capture{}
	l := audit.New(audit.Config{Sink: sink})
	r := newRouter(routermw.Audit[PkgID](l, routermw.AuditConfig{OmitData: true}))
	mux := http.NewServeMux()
	mux.Handle("POST /api/pkg/{pkg_id}", router.Bridge(r))
	withUser := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mux.ServeHTTP(w, req.WithContext(auth.NewContext(req.Context(), alice)))
	})
	for _, pkg := range []string{"1", "2"} {
		rec := httptest.NewRecorder()
		withUser.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/pkg/"+pkg, strings.NewReader(`{"data":{"a":1}}`)))
	}
	// Anonymous caller of a public package.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/pkg/3", nil))
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.NoError(t, l.Close(context.Background()))

	got := sink.all()
	require.Len(t, got, 3)
	assert.Equal(t, "HTTP:GET_THINGS", got[0].ActionType)
	assert.Equal(t, audit.Success, got[0].Outcome)
	assert.Nil(t, got[0].RequestData)
	assert.Equal(t, "HTTP:ADMIN_ONLY", got[1].ActionType)
	assert.Equal(t, audit.PermissionDenied, got[1].Outcome)
	assert.Equal(t, "HTTP:LIMITED", got[2].ActionType)
	assert.Equal(t, audit.RateLimited, got[2].Outcome)
	assert.Empty(t, got[2].UserID)
	_, err := uuid.Parse(got[2].RequestID)
	assert.NoError(t, err, "the req_id when no correlation id is known")
}

func TestOutcome(t *testing.T) {
	for s, want := range map[router.StatusCode]audit.Outcome{
		router.StatusOK: audit.Success, router.StatusError: audit.Error, router.StatusInvalidData: audit.Error,
		router.StatusPermissionDenied: audit.PermissionDenied, router.StatusRateLimited: audit.RateLimited,
	} {
		assert.Equal(t, want, routermw.Outcome(s), s.String())
	}
}

// blockingSink holds every write until release is closed.
type blockingSink struct{ release chan struct{} }

func (s blockingSink) Write(ctx context.Context, _ []audit.Entry) error {
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestAuditWriteAheadRefusesUnauditedReplies(t *testing.T) {
	release := make(chan struct{})
	// Room for one entry, and the sink does not take it: the second call
	// cannot be audited.
	l := audit.New(audit.Config{Sink: blockingSink{release}, QueueSize: 1, WriteAhead: true})
	r := newRouter(routermw.Audit[PkgID](l, routermw.AuditConfig{}))
	ctx := router.WithTransport(context.Background(), "ws")

	first := string(r.Dispatch(ctx, alice, envelope(pkgOK, `{}`)))
	assert.Contains(t, first, `"status_code":0`)
	second := string(r.Dispatch(ctx, alice, envelope(pkgOK, `{}`)))
	assert.Contains(t, second, `"status_code":1`)
	assert.Contains(t, second, `"code":"service_unavailable"`)
	assert.Contains(t, second, `"msg":"the request could not be audited"`)
	assert.Contains(t, second, `"retry_after_ms":1000`)
	assert.NotContains(t, second, `"n":1`, "the reply is withheld")
	// Packages that are not audited are not refused.
	assert.Contains(t, string(r.Dispatch(ctx, alice, envelope(pkgPing, `{}`))), `"status_code":0`)

	close(release)
	require.NoError(t, l.Close(context.Background()))
	st := l.Stats()
	assert.Equal(t, uint64(1), st.Written)
	assert.Equal(t, uint64(1), st.DroppedBy[audit.DropQueueFull])
}
