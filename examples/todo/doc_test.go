package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docs/getting-started.md quotes the files of this example exactly.
func TestGettingStartedQuotesTheExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/getting-started.md")
	require.NoError(t, err)
	quotes := regexp.MustCompile("(?s)File `examples/todo/([a-z_]+\\.go)`:\n\n```go\n(.*?)```\n").FindAllSubmatch(doc, -1)
	require.Len(t, quotes, 3)
	for _, q := range quotes {
		file, err := os.ReadFile(string(q[1]))
		require.NoError(t, err)
		assert.Equal(t, string(file), string(q[2]), "docs/getting-started.md quotes %s", q[1])
	}
}
