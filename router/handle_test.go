package router

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type DecodePage struct {
	Page    *int `json:"page"`
	PerPage *int `json:"per_page"`
}

type decodeIn struct {
	Filters *struct {
		ID   *int64 `json:"id"`
		Tags []int8 `json:"tags"`
	} `json:"filters"`
	DecodePage
	Name string `json:"name"`
}

// TestTypedDecodeErrors: data that passed the schema but does not fit the
// handler's input type is invalid_data with the field's JSON pointer, and
// neither the value nor Go type names reach the reply.
func TestTypedDecodeErrors(t *testing.T) {
	r := New[pkg](Config{})
	Handle(r, 1, func(context.Context, decodeIn) (map[string]any, error) { return map[string]any{}, nil },
		Public(), Schema(`{"type":"object"}`))
	for _, tt := range []struct{ data, path, msg string }{
		{`{"page":99999999999999999999}`, "/page", "must be a whole number in range"},
		{`{"page":1.5}`, "/page", "must be a whole number in range"},
		{`{"per_page":1e30}`, "/per_page", "must be a whole number in range"},
		{`{"filters":{"id":9223372036854775808}}`, "/filters/id", "must be a whole number in range"},
		{`{"filters":{"tags":[1,300]}}`, "/filters/tags", "must be a whole number in range"},
		{`{"name":5}`, "/name", "got number, want string"},
		{`{"filters":{"id":"7"}}`, "/filters/id", "got string, want integer"},
		{`{"filters":[]}`, "/filters", "got array, want object"},
	} {
		t.Run(tt.data, func(t *testing.T) {
			out := r.Dispatch(context.Background(), nil, []byte(`{"pkg_id":1,"req_id":"`+rid+`","data":`+tt.data+`}`))
			var rep reply
			require.NoError(t, json.Unmarshal(out, &rep))
			assert.EqualValues(t, 2, rep.StatusCode, "%s", out)
			var e errData
			require.NoError(t, json.Unmarshal(rep.Data, &e))
			assert.Equal(t, "invalid_data", e.Code)
			assert.Equal(t, "data does not fit pkg_id 1", e.Msg)
			if assert.Len(t, e.Details, 1, "%s", out) {
				assert.Equal(t, Detail{Path: tt.path, Msg: tt.msg}, e.Details[0])
			}
			assert.NotContains(t, string(out), "int64")
			assert.NotContains(t, string(out), "99999")
		})
	}
}
