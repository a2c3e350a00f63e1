package rbac

import (
	"net/http"
	"slices"
	"strings"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
)

// RequireRoles returns HTTP middleware that lets a request through only when
// its principal (from auth.Middleware) holds ALL of roles. Without a
// principal it answers 401 authentication_failed with
// "WWW-Authenticate: Bearer"; with missing roles 403 permission_denied,
// msg "Missing required roles: a, b" naming the missing ones. With no roles
// it only requires a principal.
func RequireRoles(roles ...string) func(http.Handler) http.Handler {
	required := slices.Clone(roles)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := auth.FromContext(r.Context())
			if p == nil {
				w.Header().Set("WWW-Authenticate", "Bearer")
				auth.WriteError(w, http.StatusUnauthorized, errkind.Unauthenticated.Code(), "Authentication required")
				return
			}
			if !HasAll(p.Roles, required) {
				auth.WriteError(w, http.StatusForbidden, errkind.Forbidden.Code(),
					"Missing required roles: "+strings.Join(Missing(p.Roles, required), ", "))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
