package router

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type embeddedPage struct {
	Page *int `json:"page,omitempty"`
}

type schemaInput struct {
	Name    string            `json:"name"`
	Age     *int              `json:"age,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
	Score   float64           `json:"score"`
	Active  bool              `json:"active"`
	Labels  map[string]string `json:"labels,omitempty"`
	When    time.Time         `json:"when,omitzero"`
	Skipped string            `json:"-"`
	embeddedPage
}

func TestSchemaFor(t *testing.T) {
	s := SchemaFor[schemaInput]()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"object","additionalProperties":false,
		"required":["name","score","active"],
		"properties":{
			"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},
			"score":{"type":"number"},"active":{"type":"boolean"},
			"labels":{"type":"object","additionalProperties":{"type":"string"}},
			"when":{"type":"string","format":"date-time"},"page":{"type":"integer"}}}`, string(b))

	var calls atomic.Int64
	r := New[pkg](Config{})
	Handle(r, 1, func(ctx context.Context, in schemaInput) (string, error) {
		calls.Add(1)
		return in.Name, nil
	}, Public(), Schema(SchemaFor[schemaInput]()))
	rep, e := decode(t, r.Dispatch(context.Background(), nil, []byte(env(1, `{"name":"x","score":1}`))))
	assert.Equal(t, 2, rep.StatusCode)
	assert.Equal(t, []Detail{{Path: "/active", Msg: "required property is missing"}}, e.Details)
	rep, _ = decode(t, r.Dispatch(context.Background(), nil, []byte(env(1, `{"name":"x","score":1,"active":true,"page":2}`))))
	assert.Equal(t, 0, rep.StatusCode)
	assert.EqualValues(t, 1, calls.Load())
}
