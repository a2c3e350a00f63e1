package router

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/rbac"
)

// TestPermissionsAgreeWithTheCatalogue: the permission table built from
// Permissions allows each caller exactly the packages the catalogue lists
// for them, and names them by name and id.
func TestPermissionsAgreeWithTheCatalogue(t *testing.T) {
	var calls atomic.Int64
	r := newTestRouter(t, &calls)
	r.DeclarePush(100, Name("AUTHOR_CREATED"), Roles("get-authors"))
	table := rbac.NewTable(r.Permissions()...)
	require.Len(t, table.Rules(), len(r.Routes())+len(r.Pushes()))

	for _, p := range []*auth.Principal{nil, reader, writer} {
		var fromCatalogue, fromTable []string
		for _, e := range r.Catalogue(p) {
			transport := "package"
			if e.Push {
				transport = "push"
			}
			fromCatalogue = append(fromCatalogue, fmt.Sprintf("%s %s (%d)", transport, e.Name, e.PkgID))
		}
		for _, rule := range table.Allowed(p) {
			fromTable = append(fromTable, rule.Transport+" "+rule.Name)
		}
		assert.ElementsMatch(t, fromCatalogue, fromTable, "principal %v", p)
	}

	rule, ok := table.Lookup("push", "AUTHOR_CREATED (100)")
	require.True(t, ok)
	assert.Equal(t, rbac.RolesRequired, rule.Access)
	assert.Equal(t, []string{"get-authors"}, rule.Roles)
}
