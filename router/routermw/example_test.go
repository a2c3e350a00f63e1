package routermw_test

import (
	"context"
	"fmt"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/routermw"
	"github.com/prometheus/client_golang/prometheus"
)

func ExampleAudit() {
	sink := audit.SinkFunc(func(_ context.Context, entries []audit.Entry) error {
		for _, e := range entries {
			fmt.Println(e.ActionType, e.Username, e.Outcome, *e.ResponseStatus, string(e.RequestData))
		}
		return nil
	})
	auditLog := audit.New(audit.Config{Sink: sink})

	r := router.New[int32](router.Config{})
	r.Use(routermw.Audit[int32](auditLog, routermw.AuditConfig{}), routermw.Metrics[int32](prometheus.NewRegistry()))
	r.Register(7, router.HandlerFunc[int32](func(context.Context, *router.Request[int32]) router.Response {
		return router.Response{Data: "done"}
	}), router.Roles("writer"), router.Name("CREATE_AUTHOR"))

	ctx := router.WithTransport(context.Background(), "ws")
	ada := &auth.Principal{ID: "u-1", Username: "ada", Roles: []string{"writer"}}
	bob := &auth.Principal{ID: "u-2", Username: "bob"}
	r.Dispatch(ctx, ada, []byte(`{"pkg_id":7,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"name":"Ada","password":"x"}}`))
	r.Dispatch(ctx, bob, []byte(`{"pkg_id":7,"req_id":"6b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{}}`))
	_ = auditLog.Close(context.Background())
	// Output:
	// WS:CREATE_AUTHOR ada success 0 {"name":"Ada","password":"[REDACTED]"}
	// WS:CREATE_AUTHOR bob permission_denied 3 {}
}
