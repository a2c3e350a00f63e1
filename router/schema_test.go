package router

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSchemaValidationPanicIsAnError(t *testing.T) {
	cs, err := compileSchema("panic", `{"type":"object","properties":{"n":{"type":"number","minimum":5}}}`)
	require.NoError(t, err)
	// The strict parser refuses this exponent before any schema sees it;
	// validate is called directly to reach the library with it.
	data := []byte(`{"n":1e100000000}`)
	v, err := decodeAny(data)
	require.NoError(t, err)
	require.Panics(t, func() { _ = cs.schema.Validate(v) }, "premise: jsonschema panics on this number")

	var details []Detail
	require.NotPanics(t, func() { details, err = cs.validate(data) })
	assert.Nil(t, details)
	assert.ErrorContains(t, err, "schema validation panicked")

	// The schema still works afterwards.
	details, err = cs.validate([]byte(`{"n":1}`))
	require.NoError(t, err)
	assert.Equal(t, []Detail{{Path: "/n", Msg: "minimum: want >= 5"}}, details)
}

func TestRouteValidate(t *testing.T) {
	r := New[int](Config{})
	r.Register(1, HandlerFunc[int](func(context.Context, *Request[int]) Response { return Response{} }),
		Public(), Schema(`{"type":"object","properties":{"id":{"type":"integer","minimum":1}},"required":["id"],"additionalProperties":false}`))
	r.Register(2, HandlerFunc[int](func(context.Context, *Request[int]) Response { return Response{} }), Public())
	rt := r.Route(1)
	require.NoError(t, rt.Validate([]byte(`{"id":3}`)))
	for data, want := range map[string]string{
		`{"id":0}`:          `{"code":"invalid_data","msg":"data does not match the schema","details":[{"path":"/id","msg":"minimum: want >= 1"}]}`,
		`{}`:                `{"code":"invalid_data","msg":"data does not match the schema","details":[{"path":"/id","msg":"required property is missing"}]}`,
		`[1]`:               `{"code":"invalid_request","msg":"data must be a JSON object","details":null}`,
		`{"id":1,"id":2}`:   `{"code":"invalid_request","msg":"duplicate key \"id\"","details":null}`,
		`{"id":1} {}`:       `{"code":"invalid_request","msg":"trailing data","details":null}`,
		`{"id":1e1000000}`:  ``,
		`{"id":1,"x":true}`: ``,
	} {
		err := rt.Validate([]byte(data))
		require.Error(t, err, data)
		e := ToError(err)
		assert.Equal(t, StatusInvalidData, e.Status, data)
		body, err := json.Marshal(e.Body())
		require.NoError(t, err)
		if want != "" {
			assert.JSONEq(t, want, string(body), data)
		}
		// Dispatch refuses the same data with the same details.
		var reply struct {
			Data struct {
				Details json.RawMessage `json:"details"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(r.Dispatch(context.Background(), nil, []byte(`{"pkg_id":1,"req_id":"`+uuid.NewString()+`","data":`+data+`}`)), &reply))
		if e.Code == CodeInvalidData {
			var mine struct {
				Details json.RawMessage `json:"details"`
			}
			require.NoError(t, json.Unmarshal(body, &mine))
			assert.JSONEq(t, string(reply.Data.Details), string(mine.Details), data)
		}
	}
	assert.NoError(t, r.Route(2).Validate([]byte(`{"anything":1}`)), "no schema")
}
