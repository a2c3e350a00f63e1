package routermw

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/router"
)

// AuditConfig configures Audit. The zero value is ready to use.
type AuditConfig struct {
	// RequestInfo returns the client IP, user agent and correlation id of
	// the request behind ctx. Default: audit.RequestInfoFrom(ctx).
	RequestInfo func(ctx context.Context) audit.RequestInfo
	// OmitData leaves the request data out of every entry, as if each
	// package were registered with router.Audit(router.AuditMetadata).
	OmitData bool
}

// errNotAudited is the reply of a call whose entry the write-ahead logger
// could not make durable.
var errNotAudited = &router.Error{Status: router.StatusError, Code: router.CodeServiceUnavailable,
	Msg: "the request could not be audited", Retry: time.Second}

// Audit returns a router middleware that logs one entry per package call:
// action type "<TRANSPORT>:<PKG_NAME>" ("WS:GET_AUTHORS" over WebSocket,
// "HTTP:GET_AUTHORS" over the HTTP bridge, "PKG:..." when the transport is
// not named), resource the pkg_id, the caller, the request data (redacted
// by the logger), the status_code as response status, the outcome from it
// (0 success, 3 permission_denied, 4 rate_limited, others error), the wire
// error code and message, and the duration. A package registered with
// router.Audit(router.AuditNone) is not audited, one with AuditMetadata is
// audited without its data.
//
// When the logger is in write-ahead mode (audit.Config.WriteAhead), the
// reply is released only once its entry is durable; when it cannot be
// made so, the caller gets service_unavailable instead of the reply (the
// handler has run: its effects stand, but the call is not acknowledged).
func Audit[T router.ID](l *audit.Logger, cfg AuditConfig) router.Middleware[T] {
	info := cfg.RequestInfo
	if info == nil {
		info = func(ctx context.Context) audit.RequestInfo {
			ri, _ := audit.RequestInfoFrom(ctx)
			return ri
		}
	}
	return func(next router.Handler[T]) router.Handler[T] {
		return router.HandlerFunc[T](func(ctx context.Context, req *router.Request[T]) router.Response {
			level := router.AuditRequest
			if req.Route != nil {
				level = req.Route.Audit
			}
			if level == router.AuditNone {
				return next.ServePackage(ctx, req)
			}
			name := routeName(req)
			start := time.Now()
			resp := next.ServePackage(ctx, req)
			ri := info(ctx)
			e := audit.Entry{
				ActionType:     transportPrefix(router.TransportFrom(ctx)) + ":" + name,
				Resource:       strconv.FormatInt(int64(req.PkgID), 10),
				Outcome:        Outcome(resp.Status),
				IPAddress:      ri.IP,
				UserAgent:      ri.UserAgent,
				RequestID:      ri.RequestID,
				ResponseStatus: audit.Status(int(resp.Status)),
				DurationMS:     audit.Duration(time.Since(start)),
			}
			if e.RequestID == "" {
				e.RequestID = req.ReqID.String()
			}
			if p := req.Principal; p != nil {
				e.UserID, e.Username, e.UserRoles = p.ID, p.Username, p.Roles
			}
			if !cfg.OmitData && level == router.AuditRequest {
				e.RequestData = req.Data
			}
			if resp.Status != router.StatusOK {
				if body, ok := resp.Data.(*router.ErrorBody); ok && body != nil {
					e.ErrorMessage = body.Code + ": " + body.Msg
				} else {
					e.ErrorMessage = router.ToError(resp.Err).Code
				}
			}
			if err := l.Log(ctx, e); err != nil && l.WriteAhead() {
				return router.Response{Status: errNotAudited.Status, Data: errNotAudited.Body(), Err: err}
			}
			return resp
		})
	}
}

// Outcome maps a status_code to an audit outcome.
func Outcome(s router.StatusCode) audit.Outcome {
	switch s {
	case router.StatusOK:
		return audit.Success
	case router.StatusPermissionDenied:
		return audit.PermissionDenied
	case router.StatusRateLimited:
		return audit.RateLimited
	}
	return audit.Error
}

func routeName[T router.ID](req *router.Request[T]) string {
	if req.Route != nil && req.Route.Name != "" {
		return req.Route.Name
	}
	return "PKG_" + strconv.FormatInt(int64(req.PkgID), 10)
}

func transportPrefix(t string) string {
	switch t {
	case "ws":
		return "WS"
	case "http":
		return "HTTP"
	case "":
		return "PKG"
	}
	return strings.ToUpper(t)
}
