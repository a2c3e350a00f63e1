package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/httperr"
)

// RequestInfo describes the request behind an action: the client's IP
// address, its user agent and the correlation id.
type RequestInfo struct {
	IP        string
	UserAgent string
	RequestID string
}

type requestInfoKey struct{}

// WithRequestInfo returns a copy of ctx carrying info, for producers that
// fill entries from the context (the HTTP and router middlewares).
func WithRequestInfo(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

// RequestInfoFrom returns the RequestInfo of ctx and whether there was one.
func RequestInfoFrom(ctx context.Context) (RequestInfo, bool) {
	info, ok := ctx.Value(requestInfoKey{}).(RequestInfo)
	return info, ok
}

// Identity is the authenticated caller of an HTTP request.
type Identity struct {
	UserID   string
	Username string
	Roles    []string
}

// HTTPConfig configures Middleware.
type HTTPConfig struct {
	// Identify returns the authenticated caller of r; requests for which it
	// reports false are not audited. Required.
	Identify func(r *http.Request) (Identity, bool)
	// RequestInfo returns the client IP, user agent and correlation id of r.
	// Default: the RequestInfo of r's context when present, else the host
	// of r.RemoteAddr, the User-Agent header and the X-Correlation-ID
	// header.
	RequestInfo func(r *http.Request) RequestInfo
	// Skip, when set, excludes requests from the audit (health checks,
	// metrics).
	Skip func(r *http.Request) bool
	// Amend, when set, sees each entry once the response is known, before
	// it is logged: it may change the entry (name the operation, say), and
	// returning false drops it (a request audited elsewhere unless it was
	// refused early, for instance). The middleware learns the route pattern
	// from r.Pattern, which a layer between it and the ServeMux that copies
	// the request (r.WithContext) hides; Amend can then set the resource
	// from where the application keeps the route (middleware.RouteFrom).
	Amend func(r *http.Request, e *Entry) bool
}

// Level is how much of an HTTP route's requests Middleware records, as
// Kubernetes audit levels do.
type Level uint8

// The levels.
const (
	// LevelRequest records the request with its query parameters
	// (redacted). The default.
	LevelRequest Level = iota
	// LevelMetadata records who requested what, when and with which
	// outcome, without the query parameters.
	LevelMetadata
	// LevelNone does not record the route's requests.
	LevelNone
)

type levelKey struct{}

// WithLevel declares the audit level of h's requests, for Middleware:
// wrap a route's handler as it is registered, as in
// mux.Handle("GET /health", audit.WithLevel(audit.LevelNone, h)).
func WithLevel(level Level, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := r.Context().Value(levelKey{}).(*Level); ok {
			*p = level
		}
		h.ServeHTTP(w, r)
	})
}

// Middleware audits every authenticated HTTP request: action type
// "HTTP:<METHOD>", resource the matched route pattern without its method
// ("/authors/{id}"; the path when no pattern matched), the response status, the outcome from the status (403
// permission_denied, 429 rate_limited, other 4xx and 5xx error) and the
// query parameters as redacted request data. Routes declare less with
// WithLevel. It panics when cfg.Identify is nil.
//
// When the logger is in write-ahead mode (Config.WriteAhead), responses
// are held until their entry is durable: a request whose entry cannot be
// made so gets 503 service_unavailable instead of its response (the
// handler has run, but the request is not acknowledged). Held responses
// are buffered whole; Flush has no effect until the handler returns.
// Hijacked connections (WebSocket upgrades) cannot be held.
func Middleware(l *Logger, cfg HTTPConfig) func(http.Handler) http.Handler {
	if cfg.Identify == nil {
		panic("audit: HTTPConfig.Identify is nil")
	}
	info := cfg.RequestInfo
	if info == nil {
		info = defaultRequestInfo
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cfg.Skip != nil && cfg.Skip(r) {
				next.ServeHTTP(w, r)
				return
			}
			start := time.Now()
			level := LevelRequest
			r = r.WithContext(context.WithValue(r.Context(), levelKey{}, &level))
			sw := &statusWriter{ResponseWriter: w}
			var held *heldResponse
			if l.WriteAhead() {
				held = &heldResponse{w: w, header: w.Header().Clone()}
				sw.ResponseWriter = held
			}
			next.ServeHTTP(sw, r)
			id, ok := cfg.Identify(r)
			if !ok || level == LevelNone {
				held.release(w)
				return
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			resource := r.URL.Path
			if r.Pattern != "" {
				resource = r.Pattern
				if i := strings.IndexByte(resource, ' '); i >= 0 {
					resource = strings.TrimLeft(resource[i:], " ")
				}
			}
			ri := info(r)
			e := Entry{
				UserID:         id.UserID,
				Username:       id.Username,
				UserRoles:      id.Roles,
				ActionType:     "HTTP:" + r.Method,
				Resource:       resource,
				Outcome:        OutcomeOfHTTPStatus(status),
				IPAddress:      ri.IP,
				UserAgent:      ri.UserAgent,
				RequestID:      ri.RequestID,
				ResponseStatus: Status(status),
				DurationMS:     Duration(time.Since(start)),
			}
			if q := r.URL.Query(); len(q) > 0 && level == LevelRequest {
				e.RequestData, _ = json.Marshal(q)
			}
			if status >= 400 {
				e.ErrorMessage = http.StatusText(status)
			}
			if cfg.Amend != nil && !cfg.Amend(r, &e) {
				held.release(w)
				return
			}
			if err := l.Log(r.Context(), e); err != nil && held != nil && !held.hijacked {
				httperr.Write(w, http.StatusServiceUnavailable, errkind.Unavailable.String(), "the request could not be audited", nil, time.Second)
				return
			}
			held.release(w)
		})
	}
}

// heldResponse buffers a response until its audit entry is durable.
type heldResponse struct {
	w        http.ResponseWriter // the real writer: nothing is sent to it before release
	header   http.Header         // the handler's headers, set on w at release
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (h *heldResponse) Header() http.Header { return h.header }

// Flush does nothing: the response is sent whole once audited.
func (h *heldResponse) Flush() {}

// Hijack hands the connection over; its response is not held.
func (h *heldResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.copyHeader()
	conn, rw, err := http.NewResponseController(h.w).Hijack()
	if err == nil {
		h.hijacked = true
	}
	return conn, rw, err
}

func (h *heldResponse) WriteHeader(code int) {
	if h.status == 0 || h.status < 200 && code >= 200 {
		h.status = code
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

func (h *heldResponse) copyHeader() {
	real := h.w.Header()
	clear(real)
	maps.Copy(real, h.header)
}

// release sends the held response through w; nil does nothing.
func (h *heldResponse) release(w http.ResponseWriter) {
	if h == nil || h.hijacked {
		return
	}
	h.copyHeader()
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
	if h.body.Len() > 0 {
		_, _ = w.Write(h.body.Bytes())
	}
}

// OutcomeOfHTTPStatus maps an HTTP status to an outcome.
func OutcomeOfHTTPStatus(status int) Outcome {
	switch {
	case status == http.StatusForbidden:
		return PermissionDenied
	case status == http.StatusTooManyRequests:
		return RateLimited
	case status >= 400:
		return Error
	}
	return Success
}

func defaultRequestInfo(r *http.Request) RequestInfo {
	if ri, ok := RequestInfoFrom(r.Context()); ok {
		return ri
	}
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	return RequestInfo{IP: ip, UserAgent: r.UserAgent(), RequestID: r.Header.Get("X-Correlation-ID")}
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client when the underlying writer can.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack lets a WebSocket upgrade take over the connection; the request
// counts as 101 Switching Protocols.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
