package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/dbmigrate"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type envelopeReply struct {
	PkgID      int             `json:"pkg_id"`
	ReqID      string          `json:"req_id"`
	StatusCode int             `json:"status_code"`
	Meta       json.RawMessage `json:"meta"`
	Data       json.RawMessage `json:"data"`
}

type wireError struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	Details []struct {
		Path string `json:"path"`
		Msg  string `json:"msg"`
	} `json:"details"`
}

func (a *app) pkg(t *testing.T, token string, id int, data string) (int, envelopeReply, wireError) {
	t.Helper()
	res, body := a.do(t, "POST", fmt.Sprintf("/api/pkg/%d", id), token, `{"data":`+data+`}`)
	var rep envelopeReply
	require.NoError(t, json.Unmarshal(body, &rep), "%s", body)
	var e wireError
	if rep.StatusCode != 0 {
		require.NoError(t, json.Unmarshal(rep.Data, &e), "%s", body)
	}
	return res.StatusCode, rep, e
}

func httpError(t *testing.T, body []byte) wireError {
	t.Helper()
	var e struct {
		Error wireError `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	return e.Error
}

// databases runs f on SQLite and on PostgreSQL.
func databases(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite::memory:") })
	t.Run("postgres", func(t *testing.T) { f(t, testenv.PostgresURL(t)) })
}

func TestAuthorsOverBridgeAndHTTP(t *testing.T) {
	databases(t, func(t *testing.T, dsn string) {
		a := startApp(t, map[string]string{"DATABASE_URL": dsn})
		admin, writer, reader := a.token(t, "admin"), a.token(t, "writer"), a.token(t, "reader")

		// Create over the bridge and over HTTP.
		code, rep, _ := a.pkg(t, writer, 3, `{"name":"Ada Lovelace"}`)
		require.Equal(t, 200, code)
		require.Equal(t, 0, rep.StatusCode)
		var ada Author
		require.NoError(t, json.Unmarshal(rep.Data, &ada))
		assert.Equal(t, "Ada Lovelace", ada.Name)
		assert.Positive(t, ada.ID)
		assert.False(t, ada.CreatedAt.IsZero())

		res, body := a.do(t, "POST", "/authors", writer, `{"name":"Grace Hopper"}`)
		require.Equal(t, 201, res.StatusCode, "%s", body)
		var grace Author
		require.NoError(t, json.Unmarshal(body, &grace))

		// Duplicate names conflict on both transports.
		code, rep, e := a.pkg(t, writer, 3, `{"name":"Ada Lovelace"}`)
		assert.Equal(t, 409, code)
		assert.Equal(t, 2, rep.StatusCode)
		assert.Equal(t, "conflict", e.Code)
		res, body = a.do(t, "POST", "/authors", writer, `{"name":"Ada Lovelace"}`)
		assert.Equal(t, 409, res.StatusCode)
		assert.Equal(t, "conflict", httpError(t, body).Code)

		// Schema and validation.
		code, rep, e = a.pkg(t, writer, 3, `{"name":""}`)
		assert.Equal(t, 400, code)
		assert.Equal(t, "invalid_data", e.Code)
		require.NotEmpty(t, e.Details)
		assert.Equal(t, "/name", e.Details[0].Path)
		res, body = a.do(t, "POST", "/authors", writer, `{"name":""}`)
		assert.Equal(t, 400, res.StatusCode)
		he := httpError(t, body)
		assert.Equal(t, "invalid_data", he.Code)
		require.NotEmpty(t, he.Details)
		assert.Equal(t, "/name", he.Details[0].Path)
		res, body = a.do(t, "POST", "/authors", writer, `{"name":`+strings.Repeat("x", 201)+`}`)
		assert.Equal(t, 400, res.StatusCode, "%s", body)

		// Roles: reader cannot create; role checked before the schema.
		code, rep, e = a.pkg(t, reader, 3, `{"name":""}`)
		assert.Equal(t, 403, code)
		assert.Equal(t, 3, rep.StatusCode)
		assert.Equal(t, "No permission for pkg_id 3", e.Msg)
		res, body = a.do(t, "POST", "/authors", reader, `{"name":"x"}`)
		assert.Equal(t, 403, res.StatusCode)
		assert.Equal(t, "Missing required roles: create-author", httpError(t, body).Msg)
		res, _ = a.do(t, "GET", "/authors", "", "")
		assert.Equal(t, 401, res.StatusCode)

		// Get: by id, by exact name, by search term (wins).
		code, rep, _ = a.pkg(t, reader, 1, fmt.Sprintf(`{"id":%d}`, ada.ID))
		require.Equal(t, 200, code)
		assert.Equal(t, []string{"Ada Lovelace"}, names(t, rep.Data))
		_, rep, _ = a.pkg(t, reader, 1, `{"name":"Grace Hopper"}`)
		assert.Equal(t, []string{"Grace Hopper"}, names(t, rep.Data))
		_, rep, _ = a.pkg(t, reader, 1, `{"name":"Grace Hopper","search_term":"LOVE"}`)
		assert.Equal(t, []string{"Ada Lovelace"}, names(t, rep.Data))
		_, rep, _ = a.pkg(t, reader, 1, `{"search_term":"%"}`)
		assert.Equal(t, []string{}, names(t, rep.Data), "wildcards match themselves")
		_, rep, _ = a.pkg(t, reader, 1, `{}`)
		assert.Equal(t, []string{"Ada Lovelace", "Grace Hopper"}, names(t, rep.Data))
		res, body = a.do(t, "GET", "/authors?search=hop", reader, "")
		require.Equal(t, 200, res.StatusCode)
		assert.Equal(t, []string{"Grace Hopper"}, names(t, body))
		// Case is ignored beyond ASCII, on both databases.
		code, _, _ = a.pkg(t, writer, 3, `{"name":"Émile Zola"}`)
		require.Equal(t, 200, code)
		for _, term := range []string{"émile", "ÉMILE", "Émile", "ZOLA"} {
			_, rep, _ = a.pkg(t, reader, 1, `{"search_term":"`+term+`"}`)
			assert.Equal(t, []string{"Émile Zola"}, names(t, rep.Data), term)
		}
		res, body = a.do(t, "GET", "/authors?id=abc", reader, "")
		assert.Equal(t, 400, res.StatusCode)
		assert.Equal(t, "invalid_data", httpError(t, body).Code)

		// Update: rename, missing id, taken name.
		code, rep, _ = a.pkg(t, writer, 4, fmt.Sprintf(`{"id":%d,"name":"Ada King"}`, ada.ID))
		require.Equal(t, 200, code, "%s", rep.Data)
		assert.Equal(t, []string{"Ada King"}, names(t, append(append([]byte("["), rep.Data...), ']')))
		code, _, e = a.pkg(t, writer, 4, `{"id":999999,"name":"Nobody"}`)
		assert.Equal(t, 404, code)
		assert.Equal(t, "not_found", e.Code)
		code, _, e = a.pkg(t, writer, 4, fmt.Sprintf(`{"id":%d,"name":"Grace Hopper"}`, ada.ID))
		assert.Equal(t, 409, code)
		assert.Equal(t, "conflict", e.Code)
		res, body = a.do(t, "PUT", fmt.Sprintf("/authors/%d", grace.ID), writer, `{"name":"Grace B. Hopper"}`)
		assert.Equal(t, 200, res.StatusCode, "%s", body)
		res, _ = a.do(t, "PUT", "/authors/999999", writer, `{"name":"Nobody"}`)
		assert.Equal(t, 404, res.StatusCode)

		// Delete: writer lacks the role; admin deletes; second delete is not found.
		code, _, _ = a.pkg(t, writer, 5, fmt.Sprintf(`{"id":%d}`, ada.ID))
		assert.Equal(t, 403, code)
		code, rep, _ = a.pkg(t, admin, 5, fmt.Sprintf(`{"id":%d}`, ada.ID))
		assert.Equal(t, 200, code)
		assert.JSONEq(t, `{}`, string(rep.Data))
		code, _, e = a.pkg(t, admin, 5, fmt.Sprintf(`{"id":%d}`, ada.ID))
		assert.Equal(t, 404, code)
		assert.Equal(t, "not_found", e.Code)
		res, _ = a.do(t, "DELETE", fmt.Sprintf("/authors/%d", grace.ID), admin, "")
		assert.Equal(t, 204, res.StatusCode)
		res, _ = a.do(t, "DELETE", fmt.Sprintf("/authors/%d", grace.ID), admin, "")
		assert.Equal(t, 404, res.StatusCode)
	})
}

func TestPaginatedAuthors(t *testing.T) {
	databases(t, func(t *testing.T, dsn string) {
		a := startApp(t, map[string]string{"DATABASE_URL": dsn})
		writer := a.token(t, "writer")
		for i := range 45 {
			code, _, _ := a.pkg(t, writer, 3, fmt.Sprintf(`{"name":"author %02d"}`, i))
			require.Equal(t, 200, code)
		}
		code, rep, _ := a.pkg(t, writer, 2, `{"page":2,"per_page":20}`)
		require.Equal(t, 200, code)
		assert.JSONEq(t, `{"page":2,"per_page":20,"total":45,"pages":3,"next_cursor":null,"has_more":true}`, string(rep.Meta))
		assert.Len(t, names(t, rep.Data), 20)
		_, rep, _ = a.pkg(t, writer, 2, `{"page":3}`)
		assert.JSONEq(t, `{"page":3,"per_page":20,"total":45,"pages":3,"next_cursor":null,"has_more":false}`, string(rep.Meta))
		assert.Len(t, names(t, rep.Data), 5)
		_, rep, _ = a.pkg(t, writer, 2, `{"page":9}`)
		assert.Equal(t, "[]", string(rep.Data))
		code, _, e := a.pkg(t, writer, 2, `{"per_page":1001}`)
		assert.Equal(t, 400, code)
		assert.Equal(t, "invalid_data", e.Code)
		code, _, e = a.pkg(t, writer, 2, `{"page":0}`)
		assert.Equal(t, 400, code)
		if assert.Len(t, e.Details, 1) {
			assert.Equal(t, "/page", e.Details[0].Path)
		}
		// A page the schema accepts as an integer but no int holds.
		code, _, e = a.pkg(t, writer, 2, `{"page":99999999999999999999}`)
		assert.Equal(t, 400, code)
		if assert.Len(t, e.Details, 1) {
			assert.Equal(t, "/page", e.Details[0].Path)
		}
		// In cursor mode page is ignored and reported as 1.
		code, rep, _ = a.pkg(t, writer, 2, `{"page":0,"per_page":5,"cursor":""}`)
		require.Equal(t, 200, code)
		assert.Contains(t, string(rep.Meta), `"page":1`)

		// Cursor walk: every row exactly once.
		seen := map[string]bool{}
		cursor := `""`
		for range 10 {
			code, rep, _ = a.pkg(t, writer, 2, `{"per_page":20,"cursor":`+cursor+`}`)
			require.Equal(t, 200, code)
			for _, n := range names(t, rep.Data) {
				assert.False(t, seen[n], "duplicate %s", n)
				seen[n] = true
			}
			var meta struct {
				Page       int     `json:"page"`
				Total      int     `json:"total"`
				NextCursor *string `json:"next_cursor"`
				HasMore    bool    `json:"has_more"`
			}
			require.NoError(t, json.Unmarshal(rep.Meta, &meta))
			assert.Equal(t, 1, meta.Page)
			assert.Equal(t, 0, meta.Total)
			assert.Equal(t, meta.NextCursor != nil, meta.HasMore)
			if meta.NextCursor == nil {
				break
			}
			b, _ := json.Marshal(*meta.NextCursor)
			cursor = string(b)
		}
		assert.Len(t, seen, 45)
		code, _, e = a.pkg(t, writer, 2, `{"cursor":"bm90IGEgY3Vyc29y"}`)
		assert.Equal(t, 400, code)
		assert.Equal(t, "invalid_data", e.Code)
		if assert.Len(t, e.Details, 1) {
			assert.Equal(t, "/cursor", e.Details[0].Path)
		}

		// HTTP: items + meta.
		res, body := a.do(t, "GET", "/authors/paginated?page=1&per_page=10&name="+url.QueryEscape("author 07"), writer, "")
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
		var page struct {
			Items []Author       `json:"items"`
			Meta  map[string]any `json:"meta"`
		}
		require.NoError(t, json.Unmarshal(body, &page))
		require.Len(t, page.Items, 1)
		assert.Equal(t, float64(1), page.Meta["total"])
		// Out-of-range values name the query parameter in the details.
		for q, want := range map[string]string{
			"per_page=0": "/per_page", "per_page=5000": "/per_page", "page=0": "/page", "cursor=zzz": "/cursor",
		} {
			res, body = a.do(t, "GET", "/authors/paginated?"+q, writer, "")
			assert.Equal(t, 400, res.StatusCode, q)
			e := httpError(t, body)
			assert.Equal(t, "invalid_data", e.Code, q)
			if assert.Len(t, e.Details, 1, q) {
				assert.Equal(t, want, e.Details[0].Path, q)
			}
		}
	})
}

func names(t *testing.T, data []byte) []string {
	t.Helper()
	var as []Author
	require.NoError(t, json.Unmarshal(data, &as), "%s", data)
	out := []string{}
	for _, a := range as {
		out = append(out, a.Name)
	}
	return out
}

// TestAuthorRepositoryGetByName exercises the typed repository extension on
// both databases, through the app's own migrations.
func TestAuthorRepositoryGetByName(t *testing.T) {
	databases(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := dbopen.Open(ctx, dsn, dbopen.Config{})
		require.NoError(t, err)
		defer db.Close()
		_, err = dbmigrate.Migrate(ctx, db, migrationFiles(), dbmigrate.Config{Table: "authorsvc_migrations"})
		require.NoError(t, err)
		base, err := repository.New[Author](db, repository.Config{})
		require.NoError(t, err)
		repo := AuthorRepository{base}
		ada := &Author{Name: "Ada Lovelace"}
		require.NoError(t, repo.Create(ctx, ada))
		got, err := repo.GetByName(ctx, "Ada Lovelace")
		require.NoError(t, err)
		assert.Equal(t, ada.ID, got.ID)
		_, err = repo.GetByName(ctx, "Nobody")
		assert.ErrorIs(t, err, repository.ErrNotFound)
	})
}

// TestRESTRefusesWhatThePackageRefuses: the REST routes check their input
// against the schema of the matching package, so both transports answer
// the same invalid data with the same details.
func TestRESTRefusesWhatThePackageRefuses(t *testing.T) {
	a := startApp(t, map[string]string{})
	admin := a.token(t, "admin")
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		method, path, body string
		pkg                int
		data               string
	}{
		{"GET", "/authors?id=0", "", int(GetAuthors), `{"id":0}`},
		{"GET", "/authors?id=-5", "", int(GetAuthors), `{"id":-5}`},
		{"GET", "/authors?search=" + long, "", int(GetAuthors), `{"search_term":"` + long + `"}`},
		{"GET", "/authors/paginated?per_page=0", "", int(GetPaginatedAuthors), `{"per_page":0}`},
		{"GET", "/authors/paginated?page=0", "", int(GetPaginatedAuthors), `{"page":0}`},
		{"GET", "/authors/paginated?id=0", "", int(GetPaginatedAuthors), `{"filters":{"id":0}}`},
		{"POST", "/authors", `{}`, int(CreateAuthor), `{}`},
		{"POST", "/authors", `{"name":""}`, int(CreateAuthor), `{"name":""}`},
		{"POST", "/authors", `{"name":"a","extra":1}`, int(CreateAuthor), `{"name":"a","extra":1}`},
		{"POST", "/authors", `{"name":7}`, int(CreateAuthor), `{"name":7}`},
		{"PUT", "/authors/1", `{}`, int(UpdateAuthor), `{"id":1}`},
		{"PUT", "/authors/1", `{"name":"` + strings.Repeat("y", 201) + `"}`, int(UpdateAuthor), `{"id":1,"name":"` + strings.Repeat("y", 201) + `"}`},
		{"DELETE", "/authors/0", "", int(DeleteAuthor), `{"id":0}`},
	} {
		res, body := a.do(t, tc.method, tc.path, admin, tc.body)
		require.Equal(t, 400, res.StatusCode, "%s %s: %s", tc.method, tc.path, body)
		rest := httpError(t, body)
		code, _, pkg := a.pkg(t, admin, tc.pkg, tc.data)
		require.Equal(t, 400, code)
		assert.Equal(t, pkg.Code, rest.Code, "%s %s", tc.method, tc.path)
		assert.Equal(t, pkg.Details, rest.Details, "%s %s", tc.method, tc.path)
		assert.NotEmpty(t, rest.Details, "%s %s", tc.method, tc.path)
	}
	// What only REST can get wrong.
	res, body := a.do(t, "PUT", "/authors/1", admin, `{"id":2,"name":"x"}`)
	assert.Equal(t, 400, res.StatusCode)
	assert.Equal(t, "/id", httpError(t, body).Details[0].Path)
	for _, m := range []string{"POST", "PUT"} {
		path := map[string]string{"POST": "/authors", "PUT": "/authors/1"}[m]
		res, body = a.do(t, m, path, admin, `{"name":"a","name":"b"}`)
		assert.Equal(t, 400, res.StatusCode)
		assert.Equal(t, "invalid_request", httpError(t, body).Code, "as over WebSocket")
		res, body = a.do(t, m, path, admin, `null`)
		assert.Equal(t, 400, res.StatusCode, "%s", body)
		assert.Equal(t, "invalid_request", httpError(t, body).Code)
	}
}
