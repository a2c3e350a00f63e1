package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/pkgroute/pkgroute/audit"
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

// routeOf returns the package id names, or nil (also for ids out of T's
// range).
func routeOf[T router.ID](pkgs *router.PackageRouter[T], id int64) *router.Route[T] {
	t := T(id)
	if int64(t) != id {
		return nil
	}
	return pkgs.Route(t)
}

// auditHTTP audits authenticated HTTP requests. Package calls over the
// bridge are audited by the router's middleware instead, except those the
// HTTP rate limit refuses before the router sees them, which are audited
// here as the router would name them. It sits before the rate limit.
func auditHTTP[T router.ID](l *audit.Logger, pkgs *router.PackageRouter[T], skip []string) func(http.Handler) http.Handler {
	if l == nil {
		return func(h http.Handler) http.Handler { return h }
	}
	bridge := strings.TrimSuffix(PathBridge, "{pkg_id}")
	return audit.Middleware(l, audit.HTTPConfig{
		Identify: func(r *http.Request) (audit.Identity, bool) {
			p := auth.FromContext(r.Context())
			if p == nil {
				return audit.Identity{}, false
			}
			return audit.Identity{UserID: p.ID, Username: p.Username, Roles: p.Roles}, true
		},
		Skip: func(r *http.Request) bool { return slices.Contains(skip, r.URL.Path) },
		Amend: func(r *http.Request, e *audit.Entry) bool {
			id, bridged := strings.CutPrefix(r.URL.Path, bridge)
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
			if n, err := strconv.ParseInt(id, 10, 64); err == nil {
				if rt := routeOf(pkgs, n); rt != nil {
					e.ActionType = "HTTP:" + rt.Name
				}
			}
			return true
		},
	})
}

// wsEvents records WebSocket connects, authentication failures,
// disconnects and rate-limited messages (which never reach the router, so
// they are counted in pkg_requests_total here too).
func wsEvents[T router.ID](l *audit.Logger, pkgs *router.PackageRouter[T], countRefused func(int64, string, router.StatusCode)) func(context.Context, ws.Event) {
	return func(ctx context.Context, ev ws.Event) {
		if ev.Type == ws.EventRateLimited && routeOf(pkgs, ev.PkgID) != nil {
			countRefused(ev.PkgID, "ws", router.StatusRateLimited)
		}
		if l == nil {
			return
		}
		e := audit.Entry{Resource: PathWebSocket}
		switch ev.Type {
		case ws.EventConnected:
			e.ActionType = audit.ActionWSConnect
		case ws.EventDisconnected:
			e.ActionType = audit.ActionWSDisconnect
			e.ResponseStatus = audit.Status(ev.CloseCode)
		case ws.EventRejected:
			e.ActionType, e.Outcome = audit.ActionWSAuthFailed, audit.Error
			switch ev.Reason {
			case "limit":
				e.ActionType, e.Outcome = "WS:CONNECTION_LIMIT", audit.RateLimited
			case "origin":
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
			e.UserID, e.UserRoles = p.ID, p.Roles
			e.Username = p.Username
		}
		if ri, ok := audit.RequestInfoFrom(ctx); ok {
			e.IPAddress, e.UserAgent, e.RequestID = ri.IP, ri.UserAgent, ri.RequestID
		}
		_ = l.Log(ctx, e)
	}
}
