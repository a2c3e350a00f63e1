package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Handle registers a typed handler for id: the request's data (validated
// against the route's schema, if any) is decoded into I, fn runs, and its
// output is encoded as the reply's data. An output implementing Paged puts
// its items in data and its metadata in meta; such an O needs the Paginated
// option, and Handle panics without it (meta is null on packages that are
// not paginated). fn has the shape of command.Command[I, O].Execute.
// Without a schema, fields that I does not declare are refused with
// invalid_data; with one, the schema decides.
func Handle[T ID, I, O any](r *PackageRouter[T], id T, fn func(context.Context, I) (O, error), opts ...Option) {
	if fn == nil {
		panic(fmt.Sprintf("router: pkg_id %d: nil function", id))
	}
	var zero O
	if _, paged := any(zero).(Paged); paged {
		var c routeConfig
		for _, o := range opts {
			o(&c)
		}
		if !c.paginated {
			panic(fmt.Sprintf("router: pkg_id %d: output %T is a page (router.Paged); register it with router.Paginated()", id, zero))
		}
	}
	r.Register(id, typedHandler[T, I, O](fn), opts...)
}

func typedHandler[T ID, I, O any](fn func(context.Context, I) (O, error)) HandlerFunc[T] {
	return func(ctx context.Context, req *Request[T]) Response {
		var in I
		if err := decodeData(req.Data, &in, req.Route == nil || req.Route.schema == nil); err != nil {
			return Fail(InvalidData(fmt.Sprintf("data cannot be decoded for pkg_id %d: %s", req.PkgID, err)))
		}
		out, err := fn(ctx, in)
		if err != nil {
			return Fail(err)
		}
		if p, ok := any(out).(Paged); ok {
			return Response{Data: p.PageItems(), Meta: p.PageMeta()}
		}
		return Response{Data: out}
	}
}

// decodeData decodes a JSON object into v. When strict (the route has no
// schema to govern extra fields), fields that a struct does not declare are
// refused.
func decodeData(data []byte, v any, strict bool) error {
	switch t := v.(type) {
	case *json.RawMessage:
		*t = append((*t)[:0], data...)
		return nil
	case *struct{}:
		return nil
	}
	if !strict {
		return cleanDecodeError(json.Unmarshal(data, v))
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return cleanDecodeError(d.Decode(v))
}

// cleanDecodeError describes a decoding failure without echoing values.
func cleanDecodeError(err error) error {
	if err == nil {
		return nil
	}
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		if e.Field != "" {
			return fmt.Errorf("field %q must be %s", e.Field, e.Type.String())
		}
		return fmt.Errorf("value must be %s", e.Type.String())
	}
	return err
}
