package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/auth"
)

// Bridge returns the HTTP package bridge of docs/protocol.md section 2: mounted
// at "POST /api/pkg/{pkg_id}", it reads {"req_id"?, "data"} from the body,
// runs the package through the same pipeline as the WebSocket transport
// (with the principal of auth.FromContext, nil when anonymous) and answers
// with the response envelope. The HTTP status follows the reply: 0 -> 200;
// 1 -> 404 for unknown_package and not_found, 503 for service_unavailable,
// 504 for timeout, 500 otherwise; 2 -> 400, or 409 for conflict; 3 -> 403;
// 4 -> 429. A non-public package called without a principal is answered 401
// with the HTTP error body. An empty body counts as {}.
func Bridge[T ID](r *PackageRouter[T]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := WithTransport(req.Context(), "http")
		p := auth.FromContext(ctx)
		n, err := strconv.ParseInt(pkgIDFromPath(req), 10, 64)
		id := T(n)
		if err != nil || int64(id) != n {
			writeEnvelope(w, r, 0, uuid.New(), failf(StatusInvalidData, CodeInvalidRequest, "pkg_id in the path must be an integer"))
			return
		}
		if rt := r.Route(id); rt != nil && rt.Access != AccessPublic && p == nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeHTTPError(w, http.StatusUnauthorized, "authentication_failed", "Authentication required")
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeHTTPError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request body too large")
				return
			}
			r.log.WarnContext(ctx, "read bridge body failed", "err", err)
			writeHTTPError(w, http.StatusBadRequest, CodeInvalidRequest, "request body could not be read")
			return
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			body = []byte("{}")
		}
		env := parseBridgeBody(body)
		// A req_id that was sent is echoed when valid, else the zero UUID
		// (as over WebSocket); one is generated only when none was sent.
		reqID := env.reqID
		if !env.sawReqID {
			reqID = uuid.New()
		}
		if env.err != "" {
			writeEnvelope(w, r, id, reqID, failf(StatusInvalidData, CodeInvalidRequest, "%s", env.err))
			return
		}
		data := env.data
		if data == nil {
			data = emptyObject
		}
		resp := r.serveChecked(ctx, &Request[T]{PkgID: id, ReqID: reqID, Method: env.method, Data: data, Principal: p})
		writeEnvelope(w, r, id, reqID, resp)
	})
}

func pkgIDFromPath(req *http.Request) string {
	if v := req.PathValue("pkg_id"); v != "" {
		return v
	}
	p := strings.TrimSuffix(req.URL.Path, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

// parseBridgeBody parses {"req_id"?, "method"?, "data"?} strictly.
func parseBridgeBody(b []byte) envelope {
	env := parseEnvelope(b)
	switch env.err {
	case "pkg_id is required", "req_id is required":
		env.err = ""
	}
	if env.hasPkgID {
		env.setErr(`unknown field "pkg_id": the pkg_id is in the path`)
	}
	return env
}

// HTTPStatus returns the HTTP status that carries resp over the bridge.
func HTTPStatus(resp Response) int {
	switch resp.Status {
	case StatusOK:
		return http.StatusOK
	case StatusInvalidData:
		if errorCode(resp) == CodeConflict {
			return http.StatusConflict
		}
		return http.StatusBadRequest
	case StatusPermissionDenied:
		return http.StatusForbidden
	case StatusRateLimited:
		return http.StatusTooManyRequests
	}
	switch errorCode(resp) {
	case CodeUnknownPackage, CodeNotFound:
		return http.StatusNotFound
	case CodeServiceUnavailable:
		return http.StatusServiceUnavailable
	case CodeTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func errorCode(resp Response) string {
	if b, ok := resp.Data.(*ErrorBody); ok {
		return b.Code
	}
	return ""
}

func writeEnvelope[T ID](w http.ResponseWriter, r *PackageRouter[T], id T, reqID uuid.UUID, resp Response) {
	status := HTTPStatus(resp)
	if b, ok := resp.Data.(*ErrorBody); ok && b.RetryAfterMS != nil && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) {
		secs := max((*b.RetryAfterMS+999)/1000, 1)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	out := r.Encode(id, reqID, resp)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	auth.WriteError(w, status, code, msg)
}

// PushRoute describes a server push package, for listings.
type PushRoute[T ID] struct {
	ID     T
	Name   string
	Access Access
	Roles  []string // roles a receiver needs; empty unless Access is AccessRoles
	Schema json.RawMessage
}

// DeclarePush records a push package (sent by the server, never called) for
// the catalogue: who may receive it (Roles, Authenticated or Public), its
// name and optionally its schema. A duplicate id or a missing access
// declaration panics.
func (r *PackageRouter[T]) DeclarePush(id T, opts ...Option) {
	d := declare("push pkg_id", id, opts)
	p := PushRoute[T]{ID: id, Name: d.name, Access: d.access, Roles: d.roles}
	if d.compiled != nil {
		p.Schema = d.compiled.doc
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pushes == nil {
		r.pushes = make(map[T]*PushRoute[T])
	}
	if _, dup := r.pushes[id]; dup {
		panic(fmt.Sprintf("router: push pkg_id %d declared twice", id))
	}
	r.pushes[id] = &p
}

// Push returns the declared push package id, or nil.
func (r *PackageRouter[T]) Push(id T) *PushRoute[T] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.pushes[id]
}

// Pushes lists the declared push packages ordered by id.
func (r *PackageRouter[T]) Pushes() []PushRoute[T] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]PushRoute[T], 0, len(r.pushes))
	for _, p := range r.pushes {
		c := *p
		c.Roles = slices.Clone(p.Roles)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b PushRoute[T]) int { return compareIDs(a.ID, b.ID) })
	return out
}

// Allowed reports whether p may receive the push.
func (pr *PushRoute[T]) Allowed(p *auth.Principal) bool {
	rt := Route[T]{Access: pr.Access, Roles: pr.Roles}
	return allowed(&rt, p)
}

// CatalogueEntry is one package of the catalogue.
type CatalogueEntry struct {
	PkgID     int64           `json:"pkg_id"`
	Name      string          `json:"name"`
	Access    Access          `json:"access"`
	Roles     []string        `json:"roles"`
	Paginated bool            `json:"paginated"`
	Push      bool            `json:"push"`
	Schema    json.RawMessage `json:"schema"`
}

// Catalogue lists the packages p may call and the push packages p may
// receive, ordered by pkg_id (calls first on equal ids).
func (r *PackageRouter[T]) Catalogue(p *auth.Principal) []CatalogueEntry {
	out := []CatalogueEntry{}
	for _, rt := range r.Routes() {
		if rt.Allowed(p) {
			out = append(out, CatalogueEntry{PkgID: int64(rt.ID), Name: rt.Name, Access: rt.Access,
				Roles: nonNil(rt.Roles), Paginated: rt.Paginated, Schema: nullIfEmpty(rt.Schema)})
		}
	}
	for _, pr := range r.Pushes() {
		if pr.Allowed(p) {
			out = append(out, CatalogueEntry{PkgID: int64(pr.ID), Name: pr.Name, Access: pr.Access,
				Roles: nonNil(pr.Roles), Push: true, Schema: nullIfEmpty(pr.Schema)})
		}
	}
	slices.SortStableFunc(out, func(a, b CatalogueEntry) int { return compareIDs(a.PkgID, b.PkgID) })
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullIfEmpty(s json.RawMessage) json.RawMessage {
	if len(s) == 0 {
		return json.RawMessage("null")
	}
	return s
}

// CatalogueHandler serves GET /api/packages: {"packages": [...]} for the
// principal of auth.FromContext (public packages only when anonymous).
func CatalogueHandler[T ID](r *PackageRouter[T]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, err := marshal(map[string]any{"packages": r.Catalogue(auth.FromContext(req.Context()))})
		if err != nil {
			r.log.ErrorContext(req.Context(), "encode catalogue failed", "err", err)
			writeHTTPError(w, http.StatusInternalServerError, CodeInternalError, internalMsg)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}
