// Package rbac holds role-based access rules: a caller must hold ALL the
// roles an operation requires.
//
// HasAll and Missing are the pure role logic (HasAll does not allocate).
// RequireRoles is HTTP middleware for routes behind auth.Middleware. A
// Table lists every operation of an app (built from the router's route
// listing and the app's HTTP routes, as plain Rule values) with who may
// call it, so that an app can print or serve its permission matrix.
package rbac
