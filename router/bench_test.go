package router

import (
	"context"
	"testing"

	"github.com/pkgroute/pkgroute/rbac"
)

func BenchmarkDispatch(b *testing.B) {
	r := New[pkg](Config{})
	Handle(r, pkgCreate, func(ctx context.Context, in createIn) (createIn, error) { return in, nil },
		Roles("create-author"), Schema(createSchema))
	msg := []byte(`{"pkg_id":3,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","method":"","data":{"name":"Ada Lovelace"}}`)
	ctx := context.Background()
	if out := r.Dispatch(ctx, writer, msg); string(out) != `{"pkg_id":3,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","status_code":0,"meta":null,"data":{"name":"Ada Lovelace"}}` {
		b.Fatalf("unexpected reply %s", out)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Dispatch(ctx, writer, msg)
	}
}

func BenchmarkParseEnvelope(b *testing.B) {
	msg := []byte(`{"pkg_id":3,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","method":"","data":{"name":"Ada Lovelace","tags":[1,2,3],"nested":{"a":true}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if env := parseEnvelope(msg); env.err != "" {
			b.Fatal(env.err)
		}
	}
}

func BenchmarkRBAC(b *testing.B) {
	held := []string{"get-authors", "create-author", "update-author", "delete-author"}
	need := []string{"create-author", "update-author"}
	b.ReportAllocs()
	for b.Loop() {
		if !rbac.HasAll(held, need) {
			b.Fatal("denied")
		}
	}
}
