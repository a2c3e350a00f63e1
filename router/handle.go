package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Handle registers a typed handler for id: the request's data (validated
// against the route's schema, if any) is decoded into I, fn runs, and its
// output is encoded as the reply's data. An output implementing Paged puts
// its items in data and its metadata in meta; such an O needs the Paginated
// option, and Handle panics without it (meta is null on packages that are
// not paginated). fn has the shape of command.Command[I, O].Execute.
// Keys must be the exact JSON names of I's fields (at any depth: nested,
// embedded, in slices and maps): a key that differs from one only in case
// is refused with invalid_data and its JSON pointer, where encoding/json
// would fill the field. Without a schema, fields that I does not declare
// are refused the same way; with one, the schema decides.
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
	names := namesOf(reflect.TypeFor[I]())
	return func(ctx context.Context, req *Request[T]) Response {
		var in I
		strict := req.Route == nil || req.Route.schema == nil
		if p, ok := checkNames(req.Data, names, strict); !ok {
			return Fail(InvalidData(fmt.Sprintf("data does not fit pkg_id %d", req.PkgID), Detail{Path: p.path, Msg: p.msg}))
		}
		if err := decodeData(req.Data, &in, strict); err != nil {
			return Fail(decodeError(req.PkgID, reflect.TypeOf(&in).Elem(), err))
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
		return json.Unmarshal(data, v)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// decodeError is the invalid_data error of data that in does not fit
// (after the schema, if any, accepted it): a number out of range or with a
// fraction for an integer field, a value of the wrong type. A field's
// problem is a detail with its JSON pointer; no value is echoed.
func decodeError[T ID](id T, in reflect.Type, err error) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		got, _, _ := strings.Cut(te.Value, " ") // "number 1e30": never echo the value
		msg := "got " + got + ", want " + jsonKind(te.Type)
		if got == "number" && jsonKind(te.Type) == "integer" {
			msg = "must be a whole number in range"
		}
		return InvalidData(fmt.Sprintf("data does not fit pkg_id %d", id),
			Detail{Path: jsonPointer(in, te.Field), Msg: msg})
	}
	return InvalidData(fmt.Sprintf("data cannot be decoded for pkg_id %d: %s", id, err))
}

// jsonKind names the JSON type that values of Go type t decode from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}

// jsonPointer turns the field path of a json.UnmarshalTypeError
// ("Page.page", "filters.id": JSON names joined by dots, with the Go names
// of embedded structs) into a JSON pointer ("/page", "/filters/id").
func jsonPointer(t reflect.Type, field string) string {
	if field == "" {
		return ""
	}
	var b strings.Builder
	for _, seg := range strings.Split(field, ".") {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		var next reflect.Type
		embedded := false
		if t != nil && t.Kind() == reflect.Struct {
			for i := range t.NumField() {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name == "" && f.Anonymous && ft.Name() == seg {
					next, embedded = ft, true
					break
				}
				if name == "" {
					name = f.Name
				}
				if strings.EqualFold(name, seg) {
					next = f.Type
					break
				}
			}
		} else if t != nil && (t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			next = t.Elem()
		}
		t = next
		if embedded {
			continue
		}
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(seg))
	}
	return b.String()
}
