package router

import (
	"context"
	"testing"
)

func BenchmarkDispatchPing(b *testing.B) {
	r := New[pkg](Config{})
	r.Register(10, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		return Response{Data: req.Data}
	}), Authenticated())
	msg := []byte(`{"pkg_id":10,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"n":1}}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Dispatch(ctx, writer, msg)
	}
}
