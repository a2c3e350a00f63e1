package router

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func bridgeServer(t *testing.T, r *PackageRouter[pkg]) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	withUser := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			switch req.Header.Get("X-Test-User") {
			case "writer":
				req = req.WithContext(auth.NewContext(req.Context(), writer))
			case "reader":
				req = req.WithContext(auth.NewContext(req.Context(), reader))
			}
			h.ServeHTTP(w, req)
		})
	}
	mux.Handle("POST /api/pkg/{pkg_id}", withUser(Bridge(r)))
	mux.Handle("GET /api/packages", withUser(CatalogueHandler(r)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestBridge(t *testing.T) {
	var calls atomic.Int64
	r := newTestRouter(t, &calls)
	srv := bridgeServer(t, r)
	tests := []struct {
		name, user, path, body string
		http, status           int
		code, reqID            string
	}{
		{name: "ok", user: "reader", path: "/api/pkg/1", body: `{"req_id":"` + rid + `","data":{"a":1}}`, http: 200, status: 0, reqID: rid},
		{name: "generated req_id", user: "reader", path: "/api/pkg/1", body: `{"data":{}}`, http: 200, status: 0},
		{name: "empty body", user: "reader", path: "/api/pkg/1", body: ``, http: 200, status: 0},
		{name: "upper-case req_id", user: "reader", path: "/api/pkg/1", body: `{"req_id":"` + strings.ToUpper(rid) + `"}`, http: 200, status: 0, reqID: rid},
		{name: "bad req_id", user: "reader", path: "/api/pkg/1", body: `{"req_id":"nope","data":{}}`, http: 400, status: 2, code: "invalid_request", reqID: zeroUUID},
		{name: "nil req_id", user: "reader", path: "/api/pkg/1", body: `{"req_id":"` + zeroUUID + `"}`, http: 400, status: 2, code: "invalid_request", reqID: zeroUUID},
		{name: "null req_id", user: "reader", path: "/api/pkg/1", body: `{"req_id":null}`, http: 400, status: 2, code: "invalid_request", reqID: zeroUUID},
		{name: "public anonymous", path: "/api/pkg/8", body: `{}`, http: 200, status: 0},
		{name: "non-public anonymous", path: "/api/pkg/1", body: `{}`, http: 401},
		{name: "not JSON", user: "reader", path: "/api/pkg/1", body: `nope`, http: 400, status: 2, code: "invalid_request"},
		{name: "pkg_id in body", user: "reader", path: "/api/pkg/1", body: `{"pkg_id":1}`, http: 400, status: 2, code: "invalid_request"},
		{name: "unknown field", user: "reader", path: "/api/pkg/1", body: `{"x":1}`, http: 400, status: 2, code: "invalid_request"},
		{name: "bad path id", user: "reader", path: "/api/pkg/abc", body: `{}`, http: 400, status: 2, code: "invalid_request"},
		{name: "unknown package", user: "reader", path: "/api/pkg/99", body: `{}`, http: 404, status: 1, code: "unknown_package"},
		{name: "forbidden", user: "reader", path: "/api/pkg/3", body: `{"data":{"name":"x"}}`, http: 403, status: 3, code: "permission_denied"},
		{name: "schema", user: "writer", path: "/api/pkg/3", body: `{"data":{"name":""}}`, http: 400, status: 2, code: "invalid_data"},
		{name: "conflict", user: "writer", path: "/api/pkg/3", body: `{"data":{"name":"taken"}}`, http: 409, status: 2, code: "conflict"},
		{name: "not found", user: "reader", path: "/api/pkg/5", body: `{"data":{"mode":"not_found"}}`, http: 404, status: 1, code: "not_found"},
		{name: "unavailable", user: "reader", path: "/api/pkg/5", body: `{"data":{"mode":"unavailable"}}`, http: 503, status: 1, code: "service_unavailable"},
		{name: "internal", user: "reader", path: "/api/pkg/5", body: `{"data":{"mode":"x"}}`, http: 500, status: 1, code: "internal_error"},
		{name: "timeout", path: "/api/pkg/7", body: `{}`, http: 504, status: 1, code: "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+tc.path, bytes.NewBufferString(tc.body))
			require.NoError(t, err)
			if tc.user != "" {
				req.Header.Set("X-Test-User", tc.user)
			}
			res, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			assert.Equal(t, tc.http, res.StatusCode)
			assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
			if tc.http == 401 {
				body, err := io.ReadAll(res.Body)
				require.NoError(t, err)
				assert.Equal(t, `{"error":{"code":"authentication_failed","msg":"Authentication required","details":null}}`+"\n", string(body))
				assert.Equal(t, "Bearer", res.Header.Get("WWW-Authenticate"))
				return
			}
			var rep reply
			require.NoError(t, json.NewDecoder(res.Body).Decode(&rep))
			assert.Equal(t, tc.status, rep.StatusCode)
			if tc.reqID != "" {
				assert.Equal(t, tc.reqID, rep.ReqID)
			} else {
				assert.NotEqual(t, zeroUUID, rep.ReqID, "generated")
			}
			assert.Len(t, rep.ReqID, 36)
			if tc.code != "" {
				var e errData
				require.NoError(t, json.Unmarshal(rep.Data, &e))
				assert.Equal(t, tc.code, e.Code)
			}
			if tc.http == 503 {
				assert.Equal(t, "2", res.Header.Get("Retry-After"))
			}
		})
	}
}

func TestCatalogue(t *testing.T) {
	var calls atomic.Int64
	r := newTestRouter(t, &calls)
	r.DeclarePush(100, Name("AUTHOR_CREATED"), Roles("get-authors"), Schema(`{"type":"object"}`))
	srv := bridgeServer(t, r)
	get := func(user string) []CatalogueEntry {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/packages", nil)
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, 200, res.StatusCode)
		var body struct {
			Packages []CatalogueEntry `json:"packages"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		return body.Packages
	}
	ids := func(es []CatalogueEntry) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.PkgID)
		}
		return out
	}
	assert.Equal(t, []int64{6, 7, 8, 12, 13, 14, 15}, ids(get("")), "anonymous sees public packages only")
	assert.Equal(t, []int64{1, 5, 6, 7, 8, 11, 12, 13, 14, 15, 100}, ids(get("reader")))
	w := get("writer")
	assert.Equal(t, []int64{1, 3, 5, 6, 7, 8, 11, 12, 13, 14, 15, 100}, ids(w))
	for _, e := range w {
		switch e.PkgID {
		case 3:
			assert.Equal(t, AccessRoles, e.Access)
			assert.Equal(t, []string{"create-author"}, e.Roles)
			assert.JSONEq(t, createSchema, string(e.Schema))
		case 1:
			assert.Equal(t, AccessAuthenticated, e.Access)
			assert.Equal(t, []string{}, e.Roles)
			assert.Equal(t, "null", string(e.Schema))
		case 100:
			assert.True(t, e.Push)
			assert.Equal(t, "AUTHOR_CREATED", e.Name)
		case 11:
			assert.True(t, e.Paginated)
		}
	}
}
