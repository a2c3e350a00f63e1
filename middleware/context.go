package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"

	"github.com/pkgroute/pkgroute/auth"
)

type (
	correlationKey struct{}
	loggerKey      struct{}
	clientIPKey    struct{}
	infoKey        struct{}
)

var discardLogger = slog.New(slog.DiscardHandler)

// CorrelationIDFrom returns the request's correlation id set by
// [CorrelationID], or "" when there is none.
func CorrelationIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// LoggerFrom returns the request logger that [CorrelationID] put in ctx
// (it carries the correlation_id attribute), or a logger that discards
// everything. It never returns nil.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return discardLogger
}

// ClientIPFrom returns the client address resolved by [ClientIP], and false
// when the middleware did not run or the peer address could not be parsed.
func ClientIPFrom(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(clientIPKey{}).(netip.Addr)
	return a, ok && a.IsValid()
}

// requestLogger is the logger a layer uses for one request: its own logger,
// given the correlation id, or else the request logger from the context.
func requestLogger(ctx context.Context, own *slog.Logger) *slog.Logger {
	if own == nil {
		return LoggerFrom(ctx)
	}
	if id := CorrelationIDFrom(ctx); id != "" {
		return own.With(slog.String("correlation_id", id))
	}
	return own
}

// unmatchedRoute labels requests that matched no route pattern.
const unmatchedRoute = "unmatched"

// requestInfo is shared, through the request context, between the observing
// layers (AccessLog, Metrics) and Routes, which sits below the application's
// layers and learns the matched pattern and the principal. It is locked
// because an application layer may run the rest of the chain on another
// goroutine (http.TimeoutHandler does).
type requestInfo struct {
	mu        sync.Mutex
	route     string // "" until Routes matched a pattern
	principal *auth.Principal
	onRoute   []func(route string) // run under mu
}

// observe returns the request's info holder, adding one to the context when
// there is none yet.
func observe(r *http.Request) (*requestInfo, *http.Request) {
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return info, r
	}
	info := &requestInfo{}
	return info, r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
}

// RouteFrom returns the route pattern, without its method, that [Routes]
// matched for the request of ctx ("/authors/{id}"), or "" when it is not
// known (yet): before Routes ran, for an unmatched path, or without
// AccessLog or Metrics above (which put the holder in the context). Unlike
// http.Request.Pattern it reaches layers above ones that copy the request.
func RouteFrom(ctx context.Context) string {
	info := infoFrom(ctx)
	if info == nil {
		return ""
	}
	info.mu.Lock()
	defer info.mu.Unlock()
	return info.route
}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(infoKey{}).(*requestInfo)
	return info
}

// routed records what Routes learnt and runs the route hooks.
func (i *requestInfo) routed(route string, p *auth.Principal) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.principal = p
	if route == "" || route == i.route {
		return
	}
	i.route = route
	for _, f := range i.onRoute {
		f(route)
	}
}

// locked runs f under the info's lock.
func (i *requestInfo) locked(f func()) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f()
}

// routeOf is the route label of a finished request as seen by an observer:
// the pattern Routes reported, else the pattern on the observer's own
// request, else "unmatched".
func (i *requestInfo) routeOf(r *http.Request) string {
	i.mu.Lock()
	route := i.route
	i.mu.Unlock()
	if route != "" {
		return route
	}
	if r.Pattern != "" && r.Method != http.MethodConnect {
		return routeLabel(r.Pattern)
	}
	return unmatchedRoute
}

// userOf names the caller for logs.
func (i *requestInfo) userOf(r *http.Request) string {
	i.mu.Lock()
	p := i.principal
	i.mu.Unlock()
	if p == nil {
		p = auth.FromContext(r.Context())
	}
	if p == nil {
		return ""
	}
	if p.Username != "" {
		return p.Username
	}
	return p.ID
}
