package rbac_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/rbac"
)

func TestHasAllAndMissing(t *testing.T) {
	cases := []struct {
		held, required, missing []string
	}{
		{nil, nil, nil},
		{[]string{"a"}, nil, nil},
		{nil, []string{"a"}, []string{"a"}},
		{[]string{"a", "b"}, []string{"b", "a"}, nil},
		{[]string{"a"}, []string{"a", "b", "c"}, []string{"b", "c"}},
		{[]string{"A"}, []string{"a"}, []string{"a"}},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.missing == nil, rbac.HasAll(tc.held, tc.required), "%v %v", tc.held, tc.required)
		assert.Equal(t, tc.missing, rbac.Missing(tc.held, tc.required))
	}
}

func TestRequireRoles(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	cases := []struct {
		name   string
		p      *auth.Principal
		roles  []string
		status int
		body   string
	}{
		{"all roles", &auth.Principal{Roles: []string{"b", "a", "c"}}, []string{"a", "b"}, 204, ""},
		{"no roles required", &auth.Principal{}, nil, 204, ""},
		{"missing one", &auth.Principal{Roles: []string{"a"}}, []string{"a", "b"}, 403,
			`{"error":{"code":"permission_denied","msg":"Missing required roles: b","details":null}}`},
		{"missing two", &auth.Principal{Roles: []string{"x"}}, []string{"a", "b"}, 403,
			`{"error":{"code":"permission_denied","msg":"Missing required roles: a, b","details":null}}`},
		{"no principal", nil, []string{"a"}, 401,
			`{"error":{"code":"authentication_failed","msg":"Authentication required","details":null}}`},
		{"no principal, no roles", nil, nil, 401,
			`{"error":{"code":"authentication_failed","msg":"Authentication required","details":null}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tc.p != nil {
				r = r.WithContext(auth.NewContext(context.Background(), tc.p))
			}
			w := httptest.NewRecorder()
			rbac.RequireRoles(tc.roles...)(ok).ServeHTTP(w, r)
			require.Equal(t, tc.status, w.Code)
			if tc.body == "" {
				return
			}
			assert.JSONEq(t, tc.body, w.Body.String())
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			if tc.status == 401 {
				assert.Equal(t, "Bearer", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestRequireRolesCopiesRoles(t *testing.T) {
	roles := []string{"a"}
	mw := rbac.RequireRoles(roles...)
	roles[0] = "z"
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(auth.NewContext(r.Context(), &auth.Principal{Roles: []string{"a"}}))
	w := httptest.NewRecorder()
	mw(http.NotFoundHandler()).ServeHTTP(w, r)
	assert.Equal(t, http.StatusNotFound, w.Code)
}

func testTable() *rbac.Table {
	return rbac.NewTable(
		rbac.Rule{Transport: "ws", Name: "GET_AUTHORS (1)", Roles: []string{"get-authors"}},
		rbac.Rule{Transport: "ws", Name: "PING (10)", Access: rbac.Public},
		rbac.Rule{Transport: "http", Name: "POST /api/authors", Access: rbac.RolesRequired, Roles: []string{"create-author", "get-authors"}},
		rbac.Rule{Transport: "http", Name: "GET /api/me"},
	)
}

func TestTable(t *testing.T) {
	tab := testTable()
	rules := tab.Rules()
	require.Len(t, rules, 4)
	assert.Equal(t, "GET /api/me", rules[0].Name)
	assert.Equal(t, rbac.Authenticated, rules[0].Access)
	assert.Equal(t, []string{}, rules[0].Roles)
	assert.Equal(t, rbac.RolesRequired, rules[2].Access)

	names := func(rs []rbac.Rule) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	assert.Equal(t, []string{"PING (10)"}, names(tab.Allowed(nil)))
	assert.Equal(t, []string{"GET /api/me", "PING (10)"}, names(tab.Allowed(&auth.Principal{})))
	assert.Equal(t, []string{"GET /api/me", "GET_AUTHORS (1)", "PING (10)"},
		names(tab.Allowed(&auth.Principal{Roles: []string{"get-authors"}})))
	assert.Len(t, tab.Allowed(&auth.Principal{Roles: []string{"get-authors", "create-author"}}), 4)
	assert.Equal(t, []string{"create-author", "get-authors"}, tab.Roles())

	r, ok := tab.Lookup("ws", "GET_AUTHORS (1)")
	require.True(t, ok)
	r.Roles[0] = "changed"
	r, _ = tab.Lookup("ws", "GET_AUTHORS (1)")
	assert.Equal(t, []string{"get-authors"}, r.Roles, "the table is immutable")
	_, ok = tab.Lookup("http", "GET_AUTHORS (1)")
	assert.False(t, ok)

	var b strings.Builder
	n, err := tab.WriteTo(&b)
	require.NoError(t, err)
	assert.Equal(t, int64(b.Len()), n)
	assert.Contains(t, b.String(), "http       POST /api/authors  roles          create-author,get-authors\n")
}

func TestTableRejectsMistakes(t *testing.T) {
	bad := map[string][]rbac.Rule{
		"duplicate":           {{Transport: "ws", Name: "A"}, {Transport: "ws", Name: "A", Access: rbac.Public}},
		"roles without roles": {{Name: "A", Access: rbac.RolesRequired}},
		"public with roles":   {{Name: "A", Access: rbac.Public, Roles: []string{"x"}}},
		"unknown access":      {{Name: "A", Access: "admins"}},
	}
	for name, rules := range bad {
		assert.Panics(t, func() { rbac.NewTable(rules...) }, name)
	}
	assert.NotPanics(t, func() { rbac.NewTable(rbac.Rule{Transport: "ws", Name: "A"}, rbac.Rule{Transport: "http", Name: "A"}) })
}

var sink bool

func BenchmarkHasAll(b *testing.B) {
	held := []string{"get-authors", "create-author", "update-author", "delete-author", "admin"}
	required := []string{"create-author", "admin"}
	b.ReportAllocs()
	for b.Loop() {
		sink = rbac.HasAll(held, required)
	}
	if testing.AllocsPerRun(100, func() { sink = rbac.HasAll(held, required) }) != 0 {
		b.Fatal("HasAll allocates")
	}
}

func BenchmarkRequireRolesAllowed(b *testing.B) {
	h := rbac.RequireRoles("a", "b")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(auth.NewContext(r.Context(), &auth.Principal{Roles: []string{"b", "a"}}))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func TestHasAllDoesNotAllocate(t *testing.T) {
	held := []string{"a", "b", "c"}
	req := []string{"c", "a"}
	assert.Zero(t, testing.AllocsPerRun(100, func() { sink = rbac.HasAll(held, req) }))
}
