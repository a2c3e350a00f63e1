package routermw_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/routermw"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

const (
	jwtHeader  = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ"
	jwtPayload = "eyJzdWIiOiJ1LTEiLCJwcmVmZXJyZWRfdXNlcm5hbWUiOiJhbGljZSJ9"
	jwtSig     = "Zm9yZ2VkLXNpZ25hdHVyZS1mb3ItdGVzdHM"
	jwt        = jwtHeader + "." + jwtPayload + "." + jwtSig
)

// TestNoBearerTokenPersistedOrLogged runs packages over the HTTP bridge and
// the WebSocket entry point and plain HTTP routes with the caller's bearer
// token placed everywhere a client controls, then greps every stored row
// and every log line for it.
func TestNoBearerTokenPersistedOrLogged(t *testing.T) {
	ctx := context.Background()
	sqldb, err := sql.Open("pgx", testenv.PostgresURL(t))
	require.NoError(t, err)
	db := bun.NewDB(sqldb, pgdialect.New())
	defer db.Close()
	store := auditbun.New(db, auditbun.Config{})
	require.NoError(t, store.CreateTable(ctx))

	var logs testenv.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	slogSink := audit.SlogSink(logger)
	sink := audit.SinkFunc(func(ctx context.Context, es []audit.Entry) error {
		if err := store.Write(ctx, es); err != nil {
			return err
		}
		return slogSink.Write(ctx, es)
	})
	l := audit.New(audit.Config{Sink: sink, Logger: logger, Chain: true})
	r := newRouter(routermw.Audit[PkgID](l, routermw.AuditConfig{}))

	mux := http.NewServeMux()
	mux.Handle("POST /api/pkg/{pkg_id}", router.Bridge(r))
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	auditHTTP := audit.Middleware(l, audit.HTTPConfig{Identify: func(req *http.Request) (audit.Identity, bool) {
		p := auth.FromContext(req.Context())
		if p == nil {
			return audit.Identity{}, false
		}
		return audit.Identity{UserID: p.ID, Username: p.Username, Roles: p.Roles}, true
	}})
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "Bearer "+jwt {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		c := auth.NewContext(req.Context(), alice)
		c = audit.WithRequestInfo(c, audit.RequestInfo{IP: "192.0.2.1", UserAgent: req.UserAgent(), RequestID: req.Header.Get("X-Correlation-ID")})
		auditHTTP(mux).ServeHTTP(w, req.WithContext(c))
	})
	srv := httptest.NewServer(handler)
	defer srv.Close()

	data := `{"data":{"token":"` + jwt + `","note":"Bearer ` + jwt + `","list":[{"Authorization":"Bearer ` + jwt + `"},"` + jwt + `"],"name":"x"}}`
	q := url.Values{"access_token": {jwt}, "q": {"Bearer " + jwt}, "plain": {jwt}}.Encode()
	send := func(method, path, body string) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+jwt)
		req.Header.Set("User-Agent", "client/1 Bearer "+jwt)
		req.Header.Set("X-Correlation-ID", jwt)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	send(http.MethodPost, "/api/pkg/1?"+q, data)
	send(http.MethodPost, "/api/pkg/2?"+q, data)
	send(http.MethodPost, "/api/pkg/5?"+q, data)
	send(http.MethodGet, "/things/"+jwt+"?"+q, "")
	wsCtx := audit.WithRequestInfo(router.WithTransport(ctx, "ws"), audit.RequestInfo{UserAgent: "Bearer " + jwt, RequestID: jwt})
	r.Dispatch(wsCtx, alice, envelope(pkgOK, `{"token":"`+jwt+`","deep":[[{"x":"Bearer `+jwt+`"}]]}`))
	require.NoError(t, l.Close(ctx))

	var rows []string
	require.NoError(t, db.NewRaw(`SELECT row_to_json(u)::text FROM user_actions u`).Scan(ctx, &rows))
	require.Len(t, rows, 8, "4 bridge/route entries from HTTP, 3 package entries over the bridge, 1 over WebSocket")
	logText := logs.String()
	require.Contains(t, logText, `"msg":"audit"`)
	for _, part := range []string{jwt, jwtPayload, jwtSig} {
		for _, row := range rows {
			assert.NotContains(t, row, part)
		}
		assert.NotContains(t, logText, part)
	}
	all := strings.Join(rows, "\n")
	assert.Contains(t, all, `"action_type":"WS:GET_THINGS"`)
	assert.Contains(t, all, `"action_type":"HTTP:GET_THINGS"`)
	assert.Contains(t, all, `"action_type":"HTTP:GET"`)
	assert.Contains(t, all, `"resource":"/things/{id}"`)
	assert.Contains(t, all, `[REDACTED]`)
	v := &audit.ChainVerifier{}
	require.NoError(t, store.Verify(ctx, v))
	_, _, n := v.Head()
	assert.Equal(t, 8, n)
}
