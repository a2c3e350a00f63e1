package router

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// encoding/json (v1) matches object keys to struct fields without regard
// to case: {"NAME":"x"} fills Name, and {"name":"a","Name":"b"} sets it
// twice. Typed input takes exact names only: checkNames walks the data
// along the input type before it is decoded and refuses a key that is not
// a field's exact JSON name but folds to one (wrong case), and, when
// strict, any key the type does not declare. Data that reaches it is
// already well-formed strict JSON (the router checked it).

// typeNames is what checkNames needs of a Go type, cached per type.
type typeNames struct {
	fields   map[string]*typeNames // struct: the exact JSON names
	folded   map[string]string     // struct: folded name -> exact name
	isStruct bool
	elem     *typeNames // slice, array, map: the element type
	// opaque types decode themselves (json.Unmarshaler, TextUnmarshaler,
	// interfaces, RawMessage): nothing inside them is checked.
	opaque bool
}

// unchecked is the typeNames of types with no struct inside.
var unchecked = &typeNames{opaque: true}

var namesCache sync.Map // reflect.Type -> *typeNames

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// namesOf returns the cached typeNames of t.
func namesOf(t reflect.Type) *typeNames {
	if n, ok := namesCache.Load(t); ok {
		return n.(*typeNames)
	}
	building := map[reflect.Type]*typeNames{}
	n := buildNames(t, building)
	namesCache.Store(t, n)
	return n
}

func buildNames(t reflect.Type, building map[reflect.Type]*typeNames) *typeNames {
	for t.Kind() == reflect.Pointer {
		if t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) {
			return unchecked
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) ||
		t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) {
		return unchecked
	}
	if n, ok := building[t]; ok {
		return n // a recursive type: filled in by the outer call
	}
	if n, ok := namesCache.Load(t); ok {
		return n.(*typeNames)
	}
	switch t.Kind() {
	case reflect.Struct:
		n := &typeNames{isStruct: true, fields: map[string]*typeNames{}, folded: map[string]string{}}
		building[t] = n
		for _, f := range jsonFields(t) {
			n.fields[f.name] = buildNames(f.typ, building)
			n.folded[foldName(f.name)] = f.name
		}
		return n
	case reflect.Slice, reflect.Array, reflect.Map:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return unchecked // []byte: a base64 string
		}
		n := &typeNames{}
		building[t] = n
		n.elem = buildNames(t.Elem(), building)
		if n.elem.opaque {
			n.opaque = true
			n.elem = nil
		}
		return n
	}
	return unchecked
}

type jsonField struct {
	name  string
	typ   reflect.Type
	depth int
	tag   bool
}

// jsonFields lists the fields encoding/json decodes into for struct t, by
// their JSON names, embedded structs' fields promoted as encoding/json
// does: the shallowest wins, then the tagged one; other ties drop the name.
func jsonFields(t reflect.Type) []jsonField {
	var all []jsonField
	type item struct {
		t     reflect.Type
		depth int
	}
	queue := []item{{t, 0}}
	visited := map[reflect.Type]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if visited[it.t] {
			continue
		}
		visited[it.t] = true
		for i := range it.t.NumField() {
			sf := it.t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := sf.Type
			if sf.Anonymous {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if !sf.IsExported() && et.Kind() != reflect.Struct {
					continue
				}
				if name == "" && et.Kind() == reflect.Struct {
					queue = append(queue, item{et, it.depth + 1})
					continue
				}
			} else if !sf.IsExported() {
				continue
			}
			tagged := name != ""
			if !tagged {
				name = sf.Name
			}
			all = append(all, jsonField{name: name, typ: ft, depth: it.depth, tag: tagged})
		}
	}
	// Dominance: per name, the shallowest field; among equals, the only
	// tagged one; otherwise none.
	byName := map[string][]jsonField{}
	var order []string
	for _, f := range all {
		if _, ok := byName[f.name]; !ok {
			order = append(order, f.name)
		}
		byName[f.name] = append(byName[f.name], f)
	}
	var out []jsonField
	for _, name := range order {
		fs := byName[name]
		minDepth := fs[0].depth
		for _, f := range fs {
			minDepth = min(minDepth, f.depth)
		}
		var top []jsonField
		for _, f := range fs {
			if f.depth == minDepth {
				top = append(top, f)
			}
		}
		if len(top) > 1 {
			var tagged []jsonField
			for _, f := range top {
				if f.tag {
					tagged = append(tagged, f)
				}
			}
			top = tagged
		}
		if len(top) == 1 {
			out = append(out, top[0])
		}
	}
	return out
}

// foldName folds a name as encoding/json does to match keys to fields.
func foldName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	return b.String()
}

// nameProblem is a key checkNames refuses.
type nameProblem struct {
	path string // JSON pointer of the key
	msg  string
}

// checkNames walks data (strict, well-formed JSON) along n and returns the
// first key it refuses.
func checkNames(data []byte, n *typeNames, strict bool) (nameProblem, bool) {
	if n.opaque {
		return nameProblem{}, true
	}
	w := nameWalker{jsonCursor: jsonCursor{b: data}, strict: strict}
	w.value(n)
	return w.problem, !w.failed
}

type nameWalker struct {
	jsonCursor
	strict  bool
	failed  bool
	problem nameProblem
}

func (w *nameWalker) fail(key []byte, msg string) {
	w.failed = true
	w.problem = nameProblem{path: w.pointer(&pathSeg{key: key}), msg: msg}
}

// value checks the value at w.i against n (nil: skips it).
func (w *nameWalker) value(n *typeNames) {
	w.ws()
	if w.i >= len(w.b) || w.failed {
		return
	}
	switch w.b[w.i] {
	case '{':
		w.object(n)
	case '[':
		w.array(n)
	case '"':
		w.str()
	default:
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			w.i++
		}
	}
}

func (w *nameWalker) object(n *typeNames) {
	w.i++ // {
	for !w.failed {
		w.ws()
		if w.i >= len(w.b) || w.b[w.i] == '}' {
			w.i++
			return
		}
		if w.b[w.i] == ',' {
			w.i++
			w.ws()
		}
		raw := w.str()
		w.ws()
		w.i++ // :
		var next *typeNames
		switch {
		case n == nil || n.opaque:
		case n.isStruct:
			f, ok := n.fields[string(raw)]
			if !ok && bytes.IndexByte(raw, '\\') >= 0 {
				f, ok = n.fields[unquoteKey(raw)]
			}
			if !ok {
				if exact, folds := n.folded[foldName(unquoteKey(raw))]; folds {
					w.fail(raw, "unknown field; the field is named "+strconv.Quote(exact))
					return
				}
				if w.strict {
					w.fail(raw, "unknown field")
					return
				}
			}
			next = f
		default: // a map
			next = n.elem
		}
		if next != nil && !next.opaque {
			w.path = append(w.path, pathSeg{key: raw})
			w.value(next)
			w.path = w.path[:len(w.path)-1]
		} else {
			w.value(nil)
		}
	}
}

func (w *nameWalker) array(n *typeNames) {
	w.i++ // [
	var elem *typeNames
	if n != nil && !n.isStruct && !n.opaque {
		elem = n.elem
	}
	for idx := 0; !w.failed; idx++ {
		w.ws()
		if w.i >= len(w.b) || w.b[w.i] == ']' {
			w.i++
			return
		}
		if w.b[w.i] == ',' {
			w.i++
		}
		if elem != nil && !elem.opaque {
			w.path = append(w.path, pathSeg{index: idx})
			w.value(elem)
			w.path = w.path[:len(w.path)-1]
		} else {
			w.value(nil)
		}
	}
}

// str skips the string at w.i and returns what is between its quotes.
func (w *nameWalker) str() []byte {
	start := w.i + 1
	w.i++ // "
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case '\\':
			w.i += 2
			continue
		case '"':
			w.i++
			return w.b[start : w.i-1]
		}
		w.i++
	}
	return w.b[min(start, len(w.b)):]
}
