package router

import (
	"testing"

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
