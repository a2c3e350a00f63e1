package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/middleware"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
)

// requestInfo gives the audit trail the client IP, user agent and
// correlation id of every request (WebSocket messages inherit those of
// their upgrade).
func requestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := audit.RequestInfo{UserAgent: r.UserAgent(), RequestID: middleware.CorrelationIDFrom(r.Context())}
		if ip, ok := middleware.ClientIPFrom(r.Context()); ok {
			info.IP = ip.String()
		}
		next.ServeHTTP(w, r.WithContext(audit.WithRequestInfo(r.Context(), info)))
	})
}

// auditHTTP audits authenticated HTTP requests. Package calls over the
// bridge are audited by the router's middleware instead (the WebSocket
// endpoint's per message), except those the HTTP rate limit refuses before
// the router sees them, which are audited here as the router would name
// them. Place it before the rate limit.
func auditHTTP(l *audit.Logger, pkgs *router.PackageRouter[PkgID]) func(http.Handler) http.Handler {
	if l == nil {
		return func(h http.Handler) http.Handler { return h }
	}
	return audit.Middleware(l, audit.HTTPConfig{
		Identify: func(r *http.Request) (audit.Identity, bool) {
			p := auth.FromContext(r.Context())
			if p == nil {
				return audit.Identity{}, false
			}
			return audit.Identity{UserID: p.ID, Username: p.Username, Roles: p.Roles}, true
		},
		Skip: func(r *http.Request) bool {
			switch r.URL.Path {
			case "/health", "/live", "/metrics", "/web":
				return true
			}
			return false
		},
		Amend: func(r *http.Request, e *audit.Entry) bool {
			id, bridged := strings.CutPrefix(r.URL.Path, "/api/pkg/")
			if !bridged {
				// The body limit copies requests that have a body, which
				// hides r.Pattern from this layer.
				if route := middleware.RouteFrom(r.Context()); route != "" {
					e.Resource = route
				}
				return true
			}
			if e.Outcome != audit.RateLimited {
				return false // the router's middleware audited it
			}
			e.ActionType, e.Resource, e.ErrorMessage = "HTTP:PKG_"+id, id, router.CodeRateLimitExceeded
			if n, err := strconv.ParseInt(id, 10, 32); err == nil {
				if rt := pkgs.Route(PkgID(n)); rt != nil {
					e.ActionType = "HTTP:" + rt.Name
				}
			}
			return true
		},
	})
}

// wsAuditEvents records WebSocket connects, authentication failures,
// disconnects and rate-limited messages (which never reach the router, so
// they are counted in pkg_requests_total here too).
func wsAuditEvents(l *audit.Logger, pkgs *router.PackageRouter[PkgID], countRefused func(int64, string, router.StatusCode)) func(context.Context, ws.Event) {
	return func(ctx context.Context, ev ws.Event) {
		if ev.Type == ws.EventRateLimited && routeOf(pkgs, ev.PkgID) != nil {
			countRefused(ev.PkgID, "ws", router.StatusRateLimited)
		}
		if l == nil {
			return
		}
		e := audit.Entry{Resource: "/web"}
		switch ev.Type {
		case ws.EventConnected:
			e.ActionType = audit.ActionWSConnect
		case ws.EventDisconnected:
			e.ActionType = audit.ActionWSDisconnect
			e.ResponseStatus = audit.Status(ev.CloseCode)
		case ws.EventRejected:
			e.ActionType, e.Outcome = audit.ActionWSAuthFailed, audit.Error
			if ev.Reason == "limit" {
				e.ActionType, e.Outcome = "WS:CONNECTION_LIMIT", audit.RateLimited
			} else if ev.Reason == "origin" {
				e.ActionType, e.Outcome = "WS:ORIGIN_REJECTED", audit.PermissionDenied
			}
			e.ResponseStatus = audit.Status(ev.CloseCode)
			e.ErrorMessage = "connection rejected: " + ev.Reason
		case ws.EventRateLimited:
			name := fmt.Sprintf("PKG_%d", ev.PkgID)
			if rt := routeOf(pkgs, ev.PkgID); rt != nil {
				name = rt.Name
			}
			e.ActionType, e.Resource, e.Outcome = "WS:"+name, strconv.FormatInt(ev.PkgID, 10), audit.RateLimited
			e.ResponseStatus = audit.Status(int(router.StatusRateLimited))
			e.ErrorMessage = router.CodeRateLimitExceeded
		default:
			return
		}
		if p := ev.Principal; p != nil {
			e.UserID, e.Username, e.UserRoles = p.ID, p.Username, p.Roles
		}
		if ri, ok := audit.RequestInfoFrom(ctx); ok {
			e.IPAddress, e.UserAgent, e.RequestID = ri.IP, ri.UserAgent, ri.RequestID
		}
		_ = l.Log(ctx, e)
	}
}

// auditRoutes serve the audit trail to admins.
func auditRoutes(sink *auditbun.Sink) []httpRoute {
	return []httpRoute{
		{pattern: "GET /audit-logs", roles: []string{roleAdmin}, handler: listAuditHTTP(sink)},
		{pattern: "GET /audit-logs/{id}", roles: []string{roleAdmin}, handler: getAuditHTTP(sink)},
	}
}

func listAuditHTTP(sink *auditbun.Sink) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := auditbun.Filter{
			UserID:     q.Get("user_id"),
			Username:   q.Get("username"),
			ActionType: q.Get("action_type"),
			Resource:   q.Get("resource"),
			Outcome:    audit.Outcome(q.Get("outcome")),
		}
		var err error
		for _, p := range []struct {
			key string
			dst *int
		}{{"page", &f.Page}, {"per_page", &f.PerPage}} {
			n, perr := queryInt(q.Get(p.key), "/"+p.key)
			if perr != nil {
				middleware.WriteError(w, r, perr)
				return
			}
			if n != nil {
				if *n < 1 {
					middleware.WriteError(w, r, invalidField("/"+p.key, "minimum: want >= 1"))
					return
				}
				if *n > math.MaxInt32 {
					middleware.WriteError(w, r, invalidField("/"+p.key, "maximum: want <= 2147483647"))
					return
				}
				*p.dst = int(*n)
			}
		}
		if f.Start, err = parseDate(q.Get("start_date"), "/start_date", false); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		if f.End, err = parseDate(q.Get("end_date"), "/end_date", true); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		res, err := sink.Query(r.Context(), f)
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusOK, res)
	}
}

func getAuditHTTP(sink *auditbun.Sink) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e, err := sink.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusOK, e)
	}
}

// parseDate reads an RFC 3339 time or a YYYY-MM-DD date; a date used as an
// end is inclusive (its last microsecond). A "+" offset sent unencoded in
// the query arrives as a space, which is read as "+".
func parseDate(s, path string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if i := strings.LastIndexByte(s, ' '); i > 0 && strings.Count(s, " ") == 1 {
		if t, err := time.Parse(time.RFC3339Nano, s[:i]+"+"+s[i+1:]); err == nil {
			return t, nil
		}
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, invalidField(path, "want an RFC 3339 time or YYYY-MM-DD")
	}
	if end {
		d = d.Add(24*time.Hour - time.Microsecond)
	}
	return d, nil
}

// routeOf returns the registered package id names, or nil (also for ids
// out of PkgID's range).
func routeOf(pkgs *router.PackageRouter[PkgID], id int64) *router.Route[PkgID] {
	if id < math.MinInt32 || id > math.MaxInt32 {
		return nil
	}
	return pkgs.Route(PkgID(id))
}
