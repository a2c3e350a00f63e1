package router

import (
	"fmt"

	"github.com/pkgroute/pkgroute/rbac"
)

// Permissions returns the permission rules of r's packages, for an
// rbac.Table together with the application's HTTP routes: one rule per
// callable package (transport "package": over WebSocket and the HTTP
// bridge alike) and per push package (transport "push": who receives it),
// named "NAME (pkg_id)".
func (r *PackageRouter[T]) Permissions() []rbac.Rule {
	routes, pushes := r.Routes(), r.Pushes()
	rules := make([]rbac.Rule, 0, len(routes)+len(pushes))
	for _, rt := range routes {
		rules = append(rules, permission("package", rt.Name, int64(rt.ID), rt.Access, rt.Roles))
	}
	for _, p := range pushes {
		rules = append(rules, permission("push", p.Name, int64(p.ID), p.Access, p.Roles))
	}
	return rules
}

func permission(transport, name string, id int64, a Access, roles []string) rbac.Rule {
	rule := rbac.Rule{Transport: transport, Name: fmt.Sprintf("%s (%d)", name, id), Roles: roles}
	switch a {
	case AccessPublic:
		rule.Access = rbac.Public
	case AccessAuthenticated:
		rule.Access = rbac.Authenticated
	default:
		rule.Access = rbac.RolesRequired
	}
	return rule
}
