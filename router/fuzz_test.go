package router

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
)

// FuzzDispatch feeds arbitrary bytes through the envelope parse and the
// dispatch pipeline: the router must never panic, must always answer with a
// well-formed envelope, and must never hand a handler data that the strict
// parser should have refused. The same bytes given to Serve as data must
// not reach a handler either unless they are a strict JSON object.
func FuzzDispatch(f *testing.F) {
	seeds := []string{
		env(1, `{"a":1}`),
		env(3, `{"name":"Ada"}`),
		env(3, `{"name":""}`),
		env(12, `{"n":1e400}`),
		env(12, `{"n":1e401}`),
		`{"pkg_id":1,"pkg_id":1,"req_id":"` + rid + `"}`,
		`{"pkg_id":1,"req_id":"` + rid + `","data":{"a":1,"a":2}}`,
		`{"PKG_ID":1,"req_id":"` + rid + `"}`,
		env(1, `{}`) + `{}`,
		`[]`, `null`, `"x"`, `{`, `{"pkg_id":`, "\xff",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	// The router recovers handler panics, so the handler reports what it
	// received instead of panicking.
	var bad atomic.Pointer[string]
	r := New[pkg](Config{})
	checked := HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		if ok, why := checkJSON(req.Data); !ok || !isObject(req.Data) {
			msg := "handler received data the parser should have refused: " + why + ": " + string(req.Data)
			bad.Store(&msg)
		}
		// Numbers stay json.Number: the parser lets through 1e400, which
		// is valid JSON but no float64 (typed handlers answer invalid_data).
		d := json.NewDecoder(bytes.NewReader(req.Data))
		d.UseNumber()
		var v map[string]any
		if err := d.Decode(&v); err != nil {
			msg := "handler received undecodable data: " + err.Error()
			bad.Store(&msg)
		}
		return Response{Data: req.Data}
	})
	r.Register(1, checked, Public())
	r.Register(3, checked, Public(), Schema(createSchema))
	r.Register(12, checked, Public(), Schema(`{"type":"object","properties":{"n":{"type":"number","minimum":5}}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := r.Dispatch(context.Background(), nil, in)
		var rep struct {
			PkgID      *int64          `json:"pkg_id"`
			ReqID      *string         `json:"req_id"`
			StatusCode *int            `json:"status_code"`
			Meta       json.RawMessage `json:"meta"`
			Data       json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("reply is not JSON: %v: %s", err, out)
		}
		if rep.PkgID == nil || rep.ReqID == nil || rep.StatusCode == nil || rep.Data == nil {
			t.Fatalf("reply misses keys: %s", out)
		}
		for _, id := range []pkg{1, 3, 12} {
			r.Serve(context.Background(), &Request[pkg]{PkgID: id, Data: in})
		}
		if msg := bad.Swap(nil); msg != nil {
			t.Fatal(*msg)
		}
	})
}
