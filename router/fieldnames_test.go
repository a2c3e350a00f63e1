package router

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type namesInner struct {
	Value int `json:"value"`
}

type NamesEmbedded struct {
	Emb string `json:"emb"`
}

type namesIn struct {
	NamesEmbedded
	Name  string                `json:"name"`
	Key   string                `json:"key"`
	Plain string                // JSON name "Plain"
	Inner namesInner            `json:"inner"`
	List  []namesInner          `json:"list"`
	ByKey map[string]namesInner `json:"by_key"`
	Ptr   *namesInner           `json:"ptr"`
	Self  *namesIn              `json:"self"`
	Any   any                   `json:"any"`
	Raw   json.RawMessage       `json:"raw"`
	Skip  string                `json:"-"`
}

// TestTypedInputNamesAreExact checks that typed input takes the exact JSON
// names of its fields at any depth: encoding/json would fill a field from a
// key that differs only in case.
func TestTypedInputNamesAreExact(t *testing.T) {
	const loose = `{"type":"object"}` // a schema that lets any key through
	r := New[pkg](Config{})
	var got namesIn
	echo := func(_ context.Context, in namesIn) (map[string]any, error) { got = in; return nil, nil }
	Handle(r, 50, echo, Authenticated())
	Handle(r, 51, echo, Authenticated(), Schema(loose))

	tests := []struct {
		name string
		data string
		path string // "" when accepted
		// loose is the path with the schema that allows any key ("-":
		// accepted).
		loose string
	}{
		{"exact names", `{"name":"a","Plain":"p","emb":"e","inner":{"value":1},"list":[{"value":2}],"by_key":{"X":{"value":3}},"ptr":{"value":4},"self":{"name":"s"}}`, "", "-"},
		{"escaped exact name", `{"n\u0061me":"a"}`, "", "-"},
		{"upper case", `{"NAME":"x"}`, "/NAME", "/NAME"},
		{"two spellings", `{"name":"a","Name":"b"}`, "/Name", "/Name"},
		{"untagged field in lower case", `{"plain":"x"}`, "/plain", "/plain"},
		{"escaped wrong case", `{"N\u0041ME":"x"}`, "/NAME", "/NAME"},
		{"Kelvin sign folds to k", `{"\u212aey":"x"}`, "/\u212aey", "/\u212aey"},
		{"nested struct", `{"inner":{"VALUE":1}}`, "/inner/VALUE", "/inner/VALUE"},
		{"slice element", `{"list":[{"value":1},{"Value":2}]}`, "/list/1/Value", "/list/1/Value"},
		{"map value", `{"by_key":{"a/b":{"value":1},"b":{"valuE":1}}}`, "/by_key/b/valuE", "/by_key/b/valuE"},
		{"pointer", `{"ptr":{"Value":1}}`, "/ptr/Value", "/ptr/Value"},
		{"recursive type", `{"self":{"self":{"Name":"x"}}}`, "/self/self/Name", "/self/self/Name"},
		{"promoted field", `{"EMB":"x"}`, "/EMB", "/EMB"},
		{"key with pointer escapes", `{"inner":{"a/~b":1}}`, "/inner/a~1~0b", "-"},
		{"unknown field", `{"other":1}`, "/other", "-"},
		{"skipped field", `{"Skip":"x"}`, "/Skip", "-"},
		{"embedded struct by its type name", `{"NamesEmbedded":{}}`, "/NamesEmbedded", "-"},
		{"any value is not checked", `{"any":{"NAME":1},"raw":{"X":[{"Y":1}]}}`, "", "-"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			pkg  pkg
			want string
		}{{50, tt.path}, {51, tt.loose}} {
			if c.want == "-" {
				c.want = ""
			}
			t.Run(tt.name, func(t *testing.T) {
				got = namesIn{}
				out := r.Dispatch(context.Background(), writer,
					[]byte(`{"pkg_id":`+itoaPkg(c.pkg)+`,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":`+tt.data+`}`))
				var reply struct {
					Status int `json:"status_code"`
					Data   struct {
						Code    string   `json:"code"`
						Details []Detail `json:"details"`
					} `json:"data"`
				}
				require.NoError(t, json.Unmarshal(out, &reply), string(out))
				if c.want == "" {
					assert.Equal(t, 0, reply.Status, string(out))
					return
				}
				assert.Equal(t, 2, reply.Status, string(out))
				assert.Equal(t, "invalid_data", reply.Data.Code)
				require.Len(t, reply.Data.Details, 1, string(out))
				assert.Equal(t, c.want, reply.Data.Details[0].Path)
				assert.Equal(t, namesIn{}, got, "the handler did not run")
			})
		}
	}
}

func itoaPkg(p pkg) string { b, _ := json.Marshal(int(p)); return string(b) }

func TestJSONFieldsFollowEncodingJSON(t *testing.T) {
	type A struct {
		X string
		Y string
	}
	type B struct {
		X string
		Z string
	}
	type C struct {
		Y string `json:"Y"`
	}
	type both struct {
		A
		B
		*C
		Z string `json:"z"`
	}
	var names []string
	for _, f := range jsonFields(reflect.TypeFor[both]()) {
		names = append(names, f.name)
	}
	// X: untagged in A and B at the same depth: dropped. Y: A's is
	// untagged, C's tagged at the same depth: C's. Z: B's (depth 1), z is
	// another name.
	assert.ElementsMatch(t, []string{"z", "Y", "Z"}, names)
	var v both
	require.NoError(t, json.Unmarshal([]byte(`{"X":"1","Y":"2","Z":"3","z":"4"}`), &v))
	assert.Equal(t, "", v.A.X+v.B.X, "encoding/json drops X too")
}

func BenchmarkCheckNames(b *testing.B) {
	names := namesOf(reflect.TypeFor[namesIn]())
	data := []byte(`{"name":"Ada Lovelace","inner":{"value":1},"list":[{"value":2},{"value":3}],"any":{"x":[1,2,3]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := checkNames(data, names, true); !ok {
			b.Fatal("refused")
		}
	}
}

// TestTextStoresCannotHold checks that U+0000, lone surrogates and bytes
// that are not UTF-8 are invalid_data with their JSON pointer, in values
// and names, before any handler, typed or not, and in Route.Validate.
func TestTextStoresCannotHold(t *testing.T) {
	r := New[pkg](Config{})
	ran := false
	Handle(r, 52, func(_ context.Context, in map[string]any) (map[string]any, error) { ran = true; return nil, nil }, Authenticated())
	tests := []struct {
		data string
		path string // "" when accepted
		msg  string
	}{
		{`{"a":"x\u0000y"}`, "/a", "contains U+0000"},
		{`{"a":{"b":["ok","\u0000"]}}`, "/a/b/1", "contains U+0000"},
		{`{"a\u0000":1}`, "/a\x00", "the name contains U+0000"},
		{`{"a":"\ud800"}`, "/a", "contains a lone UTF-16 surrogate"},
		{`{"a":"\ud800x"}`, "/a", "contains a lone UTF-16 surrogate"},
		{`{"a":"\ud800\ud800\udc00"}`, "/a", "contains a lone UTF-16 surrogate"},
		{`{"a":"\udc00"}`, "/a", "contains a lone UTF-16 surrogate"},
		{`{"a":"x\ud800\n"}`, "/a", "contains a lone UTF-16 surrogate"},
		{"{\"a\":\"\xff\"}", "/a", "is not valid UTF-8"},
		{"{\"a\":\"\xed\xa0\x80\"}", "/a", "is not valid UTF-8"},
		{`{"a/b":["\u0000"]}`, "/a~1b/0", "contains U+0000"},
		{`{"a":"\ud83d\ude00 \u00e9 \\u0000 \u0001"}`, "", ""},
		{`{"a":"é"}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			ran = false
			out := r.Dispatch(context.Background(), writer,
				[]byte(`{"pkg_id":52,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":`+tt.data+`}`))
			var reply struct {
				Status int `json:"status_code"`
				Data   struct {
					Code    string   `json:"code"`
					Details []Detail `json:"details"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal(out, &reply), string(out))
			verr := r.Route(52).Validate([]byte(tt.data))
			if tt.path == "" {
				assert.Equal(t, 0, reply.Status, string(out))
				assert.NoError(t, verr)
				return
			}
			assert.False(t, ran, "the handler did not run")
			assert.Equal(t, 2, reply.Status, string(out))
			if tt.msg == "is not valid UTF-8" {
				// The message itself is not UTF-8: the envelope is refused.
				assert.Equal(t, "invalid_request", reply.Data.Code)
			} else {
				assert.Equal(t, "invalid_data", reply.Data.Code)
				assert.Equal(t, []Detail{{Path: tt.path, Msg: tt.msg}}, reply.Data.Details)
			}
			var e *Error
			require.ErrorAs(t, verr, &e)
			assert.Equal(t, CodeInvalidData, e.Code)
			assert.Equal(t, []Detail{{Path: tt.path, Msg: tt.msg}}, e.Details)
		})
	}
}
