package router

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
)

func TestParseUUID(t *testing.T) {
	for _, s := range []string{"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a", "5B0C2F0E-8F3E-4A58-9C1B-2F7F4F1E9D3A", "00000000-0000-0000-0000-000000000000"} {
		got, ok := parseUUID([]byte(s))
		assert.True(t, ok, s)
		assert.Equal(t, uuid.MustParse(s), got)
	}
	for _, s := range []string{"5b0c2f0e8f3e4a589c1b2f7f4f1e9d3a", "5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3g", "5b0c2f0e-8f3e-4a58-9c1b_2f7f4f1e9d3a", "{5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a", ""} {
		_, ok := parseUUID([]byte(s))
		assert.False(t, ok, s)
	}
}
