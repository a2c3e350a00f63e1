// Package routermw holds the package-router middlewares that connect the
// router to leaf packages: Audit records every package call in an
// audit.Logger and Metrics counts calls and their durations in Prometheus.
//
//	r.Use(routermw.Audit[PkgID](auditLog, routermw.AuditConfig{}), routermw.Metrics[PkgID](reg))
package routermw
