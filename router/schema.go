package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// compiledSchema is a JSON Schema compiled once at registration.
type compiledSchema struct {
	doc    json.RawMessage // the schema document, for listings
	schema *jsonschema.Schema
}

// compileSchema compiles a schema given as []byte, json.RawMessage, string
// or a value that encodes to a JSON object (e.g. map[string]any).
func compileSchema(name string, v any) (*compiledSchema, error) {
	var raw []byte
	switch s := v.(type) {
	case []byte:
		raw = s
	case json.RawMessage:
		raw = s
	case string:
		raw = []byte(s)
	default:
		b, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("encode schema: %w", err)
		}
		raw = b
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema is not valid JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	url := "pkgroute:///" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	return &compiledSchema{doc: compact.Bytes(), schema: sch}, nil
}

var printer = message.NewPrinter(language.English)

// validate checks data (a strict, size-checked JSON object) against the
// schema. The returned details are JSON pointers with messages that never
// echo the caller's values.
func (cs *compiledSchema) validate(data []byte) (details []Detail, err error) {
	defer func() {
		if p := recover(); p != nil {
			details, err = nil, fmt.Errorf("schema validation panicked: %v", p)
		}
	}()
	v, err := decodeAny(data)
	if err != nil {
		return nil, err
	}
	verr := cs.schema.Validate(v)
	if verr == nil {
		return nil, nil
	}
	ve, ok := verr.(*jsonschema.ValidationError)
	if !ok {
		return nil, verr
	}
	collect(ve, &details)
	if len(details) == 0 {
		details = append(details, Detail{Path: pointer(ve.InstanceLocation), Msg: "validation failed"})
	}
	return details, nil
}

func collect(ve *jsonschema.ValidationError, out *[]Detail) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collect(c, out)
		}
		return
	}
	path := pointer(ve.InstanceLocation)
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, Detail{Path: path + "/" + escapePointer(m), Msg: "required property is missing"})
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, Detail{Path: path + "/" + escapePointer(p), Msg: "additional property is not allowed"})
		}
	default:
		*out = append(*out, Detail{Path: path, Msg: message1(ve.ErrorKind)})
	}
}

// message1 describes a validation failure without the instance's value.
func message1(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Pattern:
		return "does not match pattern " + strconv.Quote(k.Want)
	case *kind.Format:
		return "is not a valid " + k.Want
	case *kind.Minimum:
		return "minimum: want >= " + ratString(k.Want)
	case *kind.Maximum:
		return "maximum: want <= " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "exclusiveMinimum: want > " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "exclusiveMaximum: want < " + ratString(k.Want)
	case *kind.MultipleOf:
		return "multipleOf: want a multiple of " + ratString(k.Want)
	case *kind.PropertyNames:
		return "invalid property name"
	case *kind.Enum, *kind.Const:
		return k.LocalizedString(printer)
	case *kind.UniqueItems:
		return "items are not unique"
	}
	return k.LocalizedString(printer)
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	return strings.TrimRight(r.FloatString(10), "0")
}

func pointer(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	var b strings.Builder
	for _, p := range loc {
		b.WriteByte('/')
		b.WriteString(escapePointer(p))
	}
	return b.String()
}

func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
