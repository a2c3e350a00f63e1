package router

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/rbac"
)

// DefaultTimeout is the deadline of a handler when its route sets none.
const DefaultTimeout = 10 * time.Second

// Handler runs one package request and produces its response.
type Handler[T ID] interface {
	ServePackage(ctx context.Context, req *Request[T]) Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc[T ID] func(ctx context.Context, req *Request[T]) Response

// ServePackage calls f.
func (f HandlerFunc[T]) ServePackage(ctx context.Context, req *Request[T]) Response {
	return f(ctx, req)
}

// Middleware wraps a handler. The first middleware added is the outermost.
// Middleware sees every request that names a registered package, before the
// role and schema checks, so it observes permission_denied and invalid_data
// outcomes too.
type Middleware[T ID] func(Handler[T]) Handler[T]

// Access is who may call a package.
type Access int

// Access levels.
const (
	accessUnset Access = iota
	// AccessRoles: the caller must hold every role of the route.
	AccessRoles
	// AccessAuthenticated: any signed-in caller.
	AccessAuthenticated
	// AccessPublic: anyone, including anonymous HTTP bridge callers.
	AccessPublic
)

// String returns "roles", "authenticated" or "public".
func (a Access) String() string {
	switch a {
	case AccessRoles:
		return "roles"
	case AccessAuthenticated:
		return "authenticated"
	case AccessPublic:
		return "public"
	}
	return "unset"
}

// MarshalText encodes the access level by name.
func (a Access) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText decodes an access level name.
func (a *Access) UnmarshalText(b []byte) error {
	switch string(b) {
	case "roles":
		*a = AccessRoles
	case "authenticated":
		*a = AccessAuthenticated
	case "public":
		*a = AccessPublic
	default:
		return fmt.Errorf("router: unknown access %q", b)
	}
	return nil
}

// Route describes a registered package.
type Route[T ID] struct {
	ID        T
	Name      string
	Access    Access
	Roles     []string // required roles (all of them); empty unless Access is AccessRoles
	Schema    json.RawMessage
	Paginated bool
	Timeout   time.Duration
	// Audit is how much of the package's calls the audit trail records
	// (read by router/routermw.Audit).
	Audit AuditLevel

	schema      *compiledSchema
	handlerFunc Handler[T] // the registered handler
	handler     Handler[T] // handlerFunc behind the checks and the middleware (published routes)
}

// Option configures a route at registration.
type Option func(*routeConfig)

type routeConfig struct {
	access    Access
	accesses  [AccessPublic + 1]bool // the access options given, to refuse a mix
	roles     []string
	schema    any
	hasSchema bool
	timeout   time.Duration
	paginated bool
	name      string
	audit     AuditLevel
}

// Roles requires the caller to hold ALL the given roles. It may be given
// more than once (the roles add up) but not together with Authenticated or
// Public.
func Roles(roles ...string) Option {
	return func(c *routeConfig) {
		c.setAccess(AccessRoles)
		c.roles = append(c.roles, roles...)
	}
}

// Authenticated lets any signed-in caller call the package. It cannot be
// combined with Roles or Public.
func Authenticated() Option { return func(c *routeConfig) { c.setAccess(AccessAuthenticated) } }

// Public lets anyone call the package, including anonymous HTTP callers. It
// cannot be combined with Roles or Authenticated.
func Public() Option { return func(c *routeConfig) { c.setAccess(AccessPublic) } }

func (c *routeConfig) setAccess(a Access) {
	c.access = a
	c.accesses[a] = true
}

// Schema validates data against a JSON Schema document given as []byte,
// json.RawMessage, string, or a value encoding to a JSON object (such as
// map[string]any). The schema is compiled once, at registration.
func Schema(schema any) Option {
	return func(c *routeConfig) { c.schema, c.hasSchema = schema, true }
}

// Timeout sets the handler's deadline (default DefaultTimeout). A handler
// that returns after its deadline answers timeout, whatever it returned.
func Timeout(d time.Duration) Option { return func(c *routeConfig) { c.timeout = d } }

// Paginated marks the package as paginated: its replies carry the
// response's Meta (the meta member is null for every other package), and
// listings say so. Handle requires it for outputs that implement Paged.
func Paginated() Option { return func(c *routeConfig) { c.paginated = true } }

// AuditLevel is how much of a package's calls the audit trail records, as
// Kubernetes audit levels do.
type AuditLevel uint8

// The audit levels.
const (
	// AuditRequest records the call with its request data (redacted). The
	// default.
	AuditRequest AuditLevel = iota
	// AuditMetadata records who called what, when and with which outcome,
	// without the request data.
	AuditMetadata
	// AuditNone does not record the package's calls.
	AuditNone
)

// Audit sets the package's audit level (default AuditRequest).
// It panics on a level that is not one of the constants.
func Audit(level AuditLevel) Option {
	if level > AuditNone {
		panic(fmt.Sprintf("router: unknown audit level %d", level))
	}
	return func(c *routeConfig) { c.audit = level }
}

// Name sets the name shown in listings and audit entries (default: the
// ID's String method, or PKG_<id>).
func Name(name string) Option { return func(c *routeConfig) { c.name = name } }

// Config configures a PackageRouter. The zero value is ready to use.
type Config struct {
	// Logger receives internal errors and panics; nil discards.
	Logger *slog.Logger
}

// PackageRouter routes request envelopes to the handlers of their pkg_id.
// Register packages and add middleware before the first Dispatch.
type PackageRouter[T ID] struct {
	log    *slog.Logger
	mu     sync.RWMutex
	routes map[T]*Route[T]
	pushes map[T]*PushRoute[T]
	table  atomic.Pointer[map[T]*Route[T]] // published routes, read by Serve
	mws    []Middleware[T]
}

// New returns an empty router.
func New[T ID](cfg Config) *PackageRouter[T] {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PackageRouter[T]{log: log, routes: make(map[T]*Route[T])}
}

// Use appends middleware. It applies to every package, registered before or
// after the call.
func (r *PackageRouter[T]) Use(mw ...Middleware[T]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mws = append(r.mws, mw...)
	r.publish()
}

// Register adds the handler of pkg id. Every registration must declare its
// access with exactly one of Roles, Authenticated or Public. A duplicate id,
// a missing or conflicting access declaration or an invalid schema panics.
func (r *PackageRouter[T]) Register(id T, h Handler[T], opts ...Option) {
	d := declare("pkg_id", id, opts)
	if h == nil {
		panic(fmt.Sprintf("router: pkg_id %d (%s): nil handler", id, d.name))
	}
	rt := &Route[T]{ID: id, Name: d.name, Access: d.access, Roles: d.roles, Paginated: d.paginated, Timeout: d.timeout, Audit: d.audit, schema: d.compiled}
	if rt.Timeout <= 0 {
		rt.Timeout = DefaultTimeout
	}
	if d.compiled != nil {
		rt.Schema = d.compiled.doc
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, dup := r.routes[id]; dup {
		panic(fmt.Sprintf("router: pkg_id %d registered twice (%s and %s)", id, old.Name, d.name))
	}
	rt.handlerFunc = h
	r.routes[id] = rt
	r.publish()
}

// declared is a registration's options, checked.
type declared struct {
	routeConfig
	name     string
	roles    []string // a copy; nil unless access is AccessRoles
	compiled *compiledSchema
}

// declare applies opts for the package id (what names it in panics: "pkg_id"
// or "push pkg_id") and checks them: exactly one access level must be
// declared, Roles needs a role, and the schema must compile.
func declare[T ID](what string, id T, opts []Option) declared {
	var d declared
	for _, o := range opts {
		o(&d.routeConfig)
	}
	d.name = d.routeConfig.name
	if d.name == "" {
		d.name = defaultName(id)
	}
	var given []string
	for a := AccessRoles; a <= AccessPublic; a++ {
		if d.accesses[a] {
			given = append(given, accessOption[a])
		}
	}
	switch {
	case len(given) > 1:
		panic(fmt.Sprintf("router: %s %d (%s): conflicting access options %s; declare exactly one", what, id, d.name, strings.Join(given, ", ")))
	case d.access == accessUnset:
		panic(fmt.Sprintf("router: %s %d (%s): no access declared; use router.Roles, router.Authenticated or router.Public", what, id, d.name))
	case d.access == AccessRoles && len(d.routeConfig.roles) == 0:
		panic(fmt.Sprintf("router: %s %d (%s): router.Roles needs at least one role", what, id, d.name))
	case d.access == AccessRoles:
		d.roles = slices.Clone(d.routeConfig.roles)
	}
	if d.hasSchema {
		cs, err := compileSchema(strings.ReplaceAll(what, " ", "-")+"-"+strconv.FormatInt(int64(id), 10), d.schema)
		if err != nil {
			panic(fmt.Sprintf("router: %s %d (%s): invalid schema: %v", what, id, d.name, err))
		}
		d.compiled = cs
	}
	return d
}

// accessOption names the option that declares each access level.
var accessOption = [...]string{AccessRoles: "router.Roles", AccessAuthenticated: "router.Authenticated", AccessPublic: "router.Public"}

func defaultName(id any) string {
	if s, ok := id.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("PKG_%d", id)
}

// Route returns the route of id, or nil.
func (r *PackageRouter[T]) Route(id T) *Route[T] { return r.lookup(id) }

// Routes lists the registered packages ordered by id. The values are copies.
func (r *PackageRouter[T]) Routes() []Route[T] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Route[T], 0, len(r.routes))
	for _, rt := range r.routes {
		c := *rt
		c.Roles = slices.Clone(rt.Roles)
		c.handler, c.handlerFunc, c.schema = nil, nil, nil
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Route[T]) int { return compareIDs(a.ID, b.ID) })
	return out
}

func compareIDs[T ID](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// VerifyAll returns an error naming every id in ids that has no handler.
// Apps call it at start-up with their declared ids.
func (r *PackageRouter[T]) VerifyAll(ids ...T) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var missing []string
	for _, id := range ids {
		if _, ok := r.routes[id]; !ok {
			missing = append(missing, fmt.Sprintf("%d (%s)", id, defaultName(id)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("router: no handler for pkg_id %s", strings.Join(missing, ", "))
	}
	return nil
}

// publish builds the table that Serve reads without locks: a copy of every
// route with its handler wrapped in the middleware. It runs under r.mu, at
// registration time.
func (r *PackageRouter[T]) publish() {
	table := make(map[T]*Route[T], len(r.routes))
	for id, rt := range r.routes {
		c := *rt
		var h Handler[T] = HandlerFunc[T](func(ctx context.Context, req *Request[T]) Response {
			return r.serve(ctx, &c, req)
		})
		for i := len(r.mws) - 1; i >= 0; i-- {
			h = r.mws[i](h)
		}
		c.handler = h
		table[id] = &c
	}
	r.table.Store(&table)
}

// lookup returns the published route of id, or nil.
func (r *PackageRouter[T]) lookup(id T) *Route[T] {
	if t := r.table.Load(); t != nil {
		return (*t)[id]
	}
	return nil
}

// serve runs the checks that follow the middleware: roles, schema, deadline,
// handler (recovering a panic). A handler that returns after its deadline
// answers timeout, whatever it returned: the deadline is lazy (no timer
// unless the handler waits on ctx.Done), so the clock is read once more when
// the handler returns.
func (r *PackageRouter[T]) serve(ctx context.Context, rt *Route[T], req *Request[T]) (resp Response) {
	if !allowed(rt, req.Principal) {
		return failf(StatusPermissionDenied, CodePermissionDenied, "No permission for pkg_id %d", rt.ID)
	}
	if d, ok := checkText(req.Data); !ok {
		e := InvalidData(fmt.Sprintf("data of pkg_id %d holds text that cannot be stored", rt.ID), d)
		return Response{Status: e.Status, Data: e.Body(), Err: e}
	}
	if rt.schema != nil {
		details, err := rt.schema.validate(req.Data)
		if err != nil {
			r.log.ErrorContext(ctx, "schema validation failed", "pkg_id", int64(rt.ID), "err", err)
			return Fail(err)
		}
		if details != nil {
			e := InvalidData(fmt.Sprintf("data does not match the schema of pkg_id %d", rt.ID), details...)
			return Response{Status: e.Status, Data: e.Body(), Err: e}
		}
	}
	dctx := withLazyDeadline(ctx, rt.Timeout)
	defer dctx.release()
	ctx = dctx
	defer func() {
		if p := recover(); p != nil {
			r.log.ErrorContext(ctx, "package handler panicked", "pkg_id", int64(rt.ID), "name", rt.Name,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp = Fail(fmt.Errorf("panic: %v", p))
		}
	}()
	resp = rt.handlerFunc.ServePackage(ctx, req)
	late := !time.Now().Before(dctx.deadline)
	if resp.Status != StatusOK && resp.Data == nil {
		e := ToError(resp.Err)
		if resp.Err == nil {
			e = ToError(fmt.Errorf("handler returned status %d without data", resp.Status))
		}
		resp = Response{Status: e.Status, Data: e.Body(), Err: resp.Err}
	}
	if resp.Err != nil {
		if e := ToError(resp.Err); e.Code == CodeInternalError {
			r.log.ErrorContext(ctx, "package handler failed", "pkg_id", int64(rt.ID), "name", rt.Name, "err", resp.Err)
		}
	}
	if late && errorCode(resp) != CodeTimeout {
		resp = Fail(fmt.Errorf("pkg_id %d returned after its deadline: %w", rt.ID, context.DeadlineExceeded))
	}
	return resp
}

func allowed[T ID](rt *Route[T], p *auth.Principal) bool {
	switch rt.Access {
	case AccessPublic:
		return true
	case AccessAuthenticated:
		return p != nil
	case AccessRoles:
		return p != nil && rbac.HasAll(p.Roles, rt.Roles)
	}
	return false
}

// Allowed reports whether p may call the package of rt.
func (rt *Route[T]) Allowed(p *auth.Principal) bool { return allowed(rt, p) }

// Validate checks data as Dispatch checks the data of an envelope, so that
// another transport (a REST route over the same command) refuses exactly
// what the package refuses: data that is not one strict JSON object
// (duplicate keys, absurd numbers, deep nesting, trailing data) is an
// invalid_request *Error, data with text a store cannot hold (U+0000, a
// lone surrogate, bytes that are not UTF-8) or that does not match the
// package's schema an invalid_data *Error whose details name each failing
// value by its JSON pointer. It returns nil when data passes.
func (rt *Route[T]) Validate(data []byte) error {
	if ok, why := checkJSON(data); !ok {
		return NewError(StatusInvalidData, CodeInvalidRequest, why)
	}
	if !isObject(data) {
		return NewError(StatusInvalidData, CodeInvalidRequest, "data must be a JSON object")
	}
	if d, ok := checkText(data); !ok {
		return InvalidData("data holds text that cannot be stored", d)
	}
	if rt.schema == nil {
		return nil
	}
	details, err := rt.schema.validate(data)
	if err != nil {
		return fmt.Errorf("schema validation of pkg_id %d: %w", rt.ID, err)
	}
	if details != nil {
		return InvalidData("data does not match the schema", details...)
	}
	return nil
}
