package main

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTextAStoreCannotHold sends values that pass the schema but that a
// store refuses or alters (U+0000, lone surrogates, integers beyond
// BIGINT) on every path into the store: over the bridge, WebSocket, REST
// bodies and query parameters, on both stores. Each is invalid_data with
// its JSON pointer, never internal_error.
func TestTextAStoreCannotHold(t *testing.T) {
	databases(t, func(t *testing.T, dsn string) {
		a := startApp(t, map[string]string{"DATABASE_URL": dsn})
		admin := a.token(t, "admin")
		c := a.dial(t, admin)

		packages := []struct {
			pkg  int
			data string
			path string
		}{
			{int(CreateAuthor), `{"name":"a\u0000b"}`, "/name"},
			{int(CreateAuthor), `{"name":"\ud800"}`, "/name"},
			{int(CreateAuthor), `{"name":"x\udfff"}`, "/name"},
			{int(UpdateAuthor), `{"id":1,"name":"\u0000"}`, "/name"},
			{int(GetAuthors), `{"name":"\u0000"}`, "/name"},
			{int(GetAuthors), `{"search_term":"%\u0000%"}`, "/search_term"},
			{int(GetPaginatedAuthors), `{"filters":{"name":"\u0000"}}`, "/filters/name"},
			{int(GetPaginatedAuthors), `{"cursor":"\u0000"}`, "/cursor"},
			{int(GetAuthors), `{"id":9223372036854775808}`, "/id"},
			{int(DeleteAuthor), `{"id":1e30}`, "/id"},
		}
		for _, tc := range packages {
			code, rep, e := a.pkg(t, admin, tc.pkg, tc.data)
			assert.Equal(t, 400, code, "bridge %d %s", tc.pkg, tc.data)
			assert.Equal(t, 2, rep.StatusCode)
			assert.Equal(t, "invalid_data", e.Code, "bridge %d %s: %s", tc.pkg, tc.data, e.Msg)
			if assert.Len(t, e.Details, 1, "bridge %d %s", tc.pkg, tc.data) {
				assert.Equal(t, tc.path, e.Details[0].Path)
			}

			m := call(t, c, int64(tc.pkg), tc.data)
			require.Equal(t, 2, int(m.StatusCode()), "ws %d %s: %s", tc.pkg, tc.data, m.Data)
			var we wireError
			require.NoError(t, json.Unmarshal(m.Data, &we))
			assert.Equal(t, "invalid_data", we.Code)
			assert.Equal(t, e.Details, we.Details, "ws %d %s", tc.pkg, tc.data)
		}

		rest := []struct {
			method, path, body string
			pointer            string
		}{
			{"POST", "/authors", `{"name":"a\u0000"}`, "/name"},
			{"POST", "/authors", `{"name":"\ud83d"}`, "/name"},
			{"PUT", "/authors/1", `{"name":"\u0000"}`, "/name"},
			{"GET", "/authors?name=" + url.QueryEscape("a\x00"), "", "/name"},
			{"GET", "/authors?search=" + url.QueryEscape("\x00"), "", "/search_term"},
			{"GET", "/authors/paginated?name=" + url.QueryEscape("\x00"), "", "/filters/name"},
			{"GET", "/authors/paginated?cursor=" + url.QueryEscape("\x00"), "", "/cursor"},
			{"GET", "/authors?id=9223372036854775808", "", "/id"},
			{"DELETE", "/authors/99999999999999999999", "", "/id"},
		}
		for _, tc := range rest {
			res, body := a.do(t, tc.method, tc.path, admin, tc.body)
			assert.Equal(t, 400, res.StatusCode, "%s %s: %s", tc.method, tc.path, body)
			e := httpError(t, body)
			assert.Equal(t, "invalid_data", e.Code, "%s %s: %s", tc.method, tc.path, body)
			if assert.Len(t, e.Details, 1, "%s %s: %s", tc.method, tc.path, body) {
				assert.Equal(t, tc.pointer, e.Details[0].Path)
			}
		}

		// Text a store holds passes: astral characters, escaped or not.
		code, rep, _ := a.pkg(t, admin, int(CreateAuthor), `{"name":"\ud83d\ude00 é \u0001"}`)
		require.Equal(t, 200, code, "%s", rep.Data)
	})
}
