// Package rbac holds role-based access rules: a caller must hold ALL the
// roles a route requires.
package rbac
