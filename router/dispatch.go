package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/auth"
)

type transportKey struct{}

// WithTransport returns a copy of ctx that names the transport ("ws",
// "http") for middleware such as metrics and audit. Transports set it once
// per connection or request.
func WithTransport(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, transportKey{}, name)
}

// TransportFrom returns the transport named by WithTransport, or "".
func TransportFrom(ctx context.Context) string {
	s, _ := ctx.Value(transportKey{}).(string)
	return s
}

// Dispatch parses raw as a request envelope, runs it through the pipeline
// (handler exists, middleware, roles, schema, handler with its deadline) and
// returns the encoded response envelope. p is the caller, nil when
// anonymous. Dispatch never panics because of a request.
func (r *PackageRouter[T]) Dispatch(ctx context.Context, p *auth.Principal, raw []byte) []byte {
	pkg, reqID, resp := r.DispatchResponse(ctx, p, raw)
	return r.Encode(pkg, reqID, resp)
}

// DispatchResponse is Dispatch without the encoding: it returns the pkg_id
// and req_id to echo and the response.
func (r *PackageRouter[T]) DispatchResponse(ctx context.Context, p *auth.Principal, raw []byte) (T, uuid.UUID, Response) {
	env := parseEnvelope(raw)
	var id T
	if env.hasPkgID {
		id = T(env.pkgID)
		if int64(id) != env.pkgID {
			id = 0
			env.setErr("pkg_id is out of range")
		}
	}
	if env.err != "" {
		return id, env.reqID, failf(StatusInvalidData, CodeInvalidRequest, "%s", env.err)
	}
	data := env.data
	if data == nil {
		data = emptyObject
	}
	req := &Request[T]{PkgID: id, ReqID: env.reqID, Method: env.method, Data: data, Principal: p}
	return id, env.reqID, r.serveChecked(ctx, req)
}

// Serve runs a request that a transport built itself through the pipeline
// (handler exists, middleware, roles, schema, handler). req.Data is checked
// as strictly as Dispatch checks the data of an envelope: it must be one
// JSON object without duplicate keys, absurd numbers or deep nesting, else
// the reply is invalid_request; empty Data counts as {}.
func (r *PackageRouter[T]) Serve(ctx context.Context, req *Request[T]) Response {
	if len(req.Data) > 0 {
		if ok, why := checkJSON(req.Data); !ok {
			return failf(StatusInvalidData, CodeInvalidRequest, "%s", why)
		}
		if !isObject(req.Data) {
			return failf(StatusInvalidData, CodeInvalidRequest, "data must be a JSON object")
		}
	}
	return r.serveChecked(ctx, req)
}

// isObject reports whether the JSON value b (already checked) is an object.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// serveChecked is Serve for data that the strict parser has accepted.
func (r *PackageRouter[T]) serveChecked(ctx context.Context, req *Request[T]) (resp Response) {
	rt := r.lookup(req.PkgID)
	if rt == nil {
		return failf(StatusError, CodeUnknownPackage, "No handler found for pkg_id %d", req.PkgID)
	}
	req.Route = rt
	if len(req.Data) == 0 {
		req.Data = emptyObject
	}
	// Handlers and the commands they call find their caller in ctx, as
	// over HTTP.
	if req.Principal != nil && auth.FromContext(ctx) != req.Principal {
		ctx = auth.NewContext(ctx, req.Principal)
	}
	// The handler's own panics are recovered inside the chain; this catches
	// those of middleware, so that no request panics the caller.
	defer func() {
		if p := recover(); p != nil {
			r.log.ErrorContext(ctx, "package middleware panicked", "pkg_id", int64(rt.ID), "name", rt.Name,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp = Fail(fmt.Errorf("panic: %v", p))
		}
	}()
	return rt.handler.ServePackage(ctx, req)
}

// Encode writes the response envelope of docs/protocol.md section 1.3: pkg_id,
// req_id, status_code, meta, data, in this order. meta is resp.Meta on a
// success of a package registered with Paginated, and null otherwise. When
// resp cannot be encoded (an encoding error, or a panic in a MarshalJSON
// method) the reply is internal_error and the cause is logged.
func (r *PackageRouter[T]) Encode(pkg T, reqID uuid.UUID, resp Response) []byte {
	if resp.Meta != nil && (resp.Status != StatusOK || !r.paginated(pkg)) {
		resp.Meta = nil
	}
	buf, err := appendEnvelope(make([]byte, 0, 256), pkg, reqID, resp)
	if err != nil {
		var pe *encodePanic
		if errors.As(err, &pe) {
			r.log.Error("encode response panicked", "pkg_id", int64(pkg), "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
		} else {
			r.log.Error("encode response failed", "pkg_id", int64(pkg), "err", err)
		}
		buf, _ = appendEnvelope(buf[:0], pkg, reqID, Fail(fmt.Errorf("encode response: %w", err)))
	}
	return buf
}

// paginated reports whether pkg is registered with Paginated.
func (r *PackageRouter[T]) paginated(pkg T) bool {
	rt := r.lookup(pkg)
	return rt != nil && rt.Paginated
}

func appendEnvelope[T ID](buf []byte, pkg T, reqID uuid.UUID, resp Response) ([]byte, error) {
	buf = append(buf, `{"pkg_id":`...)
	buf = strconv.AppendInt(buf, int64(pkg), 10)
	buf = append(buf, `,"req_id":"`...)
	buf = appendUUID(buf, reqID)
	buf = append(buf, `","status_code":`...)
	buf = strconv.AppendInt(buf, int64(resp.Status), 10)
	buf = append(buf, `,"meta":`...)
	buf, err := appendJSON(buf, resp.Meta)
	if err != nil {
		return buf, err
	}
	buf = append(buf, `,"data":`...)
	if buf, err = appendJSON(buf, resp.Data); err != nil {
		return buf, err
	}
	return append(buf, '}'), nil
}

// EncodePush writes a server push: exactly pkg_id, the zero UUID as req_id,
// and data (docs/protocol.md section 1.5).
func EncodePush[T ID](pkg T, data any) ([]byte, error) {
	buf := make([]byte, 0, 128)
	buf = append(buf, `{"pkg_id":`...)
	buf = strconv.AppendInt(buf, int64(pkg), 10)
	buf = append(buf, `,"req_id":"00000000-0000-0000-0000-000000000000","data":`...)
	buf, err := appendJSON(buf, data)
	if err != nil {
		return nil, err
	}
	return append(buf, '}'), nil
}

type jsonEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := new(jsonEncoder)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// encodePanic is a panic raised while encoding a value (by a MarshalJSON
// or MarshalText method), turned into an error. It never unwraps, so that
// ToError maps it to internal_error.
type encodePanic struct {
	value any
	stack []byte
}

func (p *encodePanic) Error() string { return fmt.Sprintf("panic while encoding JSON: %v", p.value) }

// appendJSON appends the JSON encoding of v (without HTML escaping) to dst.
// A panic while encoding v is returned as an *encodePanic.
func appendJSON(dst []byte, v any) (out []byte, err error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case json.RawMessage:
		if len(v) == 0 {
			return append(dst, "null"...), nil
		}
		return append(dst, v...), nil
	}
	e := encoders.Get().(*jsonEncoder)
	defer func() {
		if p := recover(); p != nil {
			// e is dropped: its state after the panic is not trusted.
			out, err = dst, &encodePanic{value: p, stack: debug.Stack()}
			return
		}
		if e.buf.Cap() <= 64<<10 {
			e.buf.Reset()
			encoders.Put(e)
		}
	}()
	if err := e.enc.Encode(v); err != nil {
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))...), nil
}

// marshal encodes v as JSON without HTML escaping.
func marshal(v any) ([]byte, error) { return appendJSON(nil, v) }

func appendUUID(dst []byte, u uuid.UUID) []byte {
	var s [36]byte
	const hex = "0123456789abcdef"
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hex[b>>4], hex[b&0x0f]
		j += 2
	}
	return append(dst, s[:]...)
}
