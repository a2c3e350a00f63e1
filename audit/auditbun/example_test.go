package auditbun_test

import (
	"context"
	"fmt"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/repository/dbopen"
)

func Example() {
	ctx := context.Background()
	db, err := dbopen.Open(ctx, "sqlite::memory:", dbopen.Config{})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	sink := auditbun.New(db, auditbun.Config{})
	if err := sink.CreateTable(ctx); err != nil {
		panic(err)
	}
	l := audit.New(audit.Config{Sink: sink, Chain: true})
	// In an application: go l.Run(ctx), and l.Close(shutdownCtx) at exit.
	_ = l.Log(ctx, audit.Entry{Username: "ada", ActionType: "WS:CREATE_AUTHOR"})
	_ = l.Log(ctx, audit.Entry{Username: "bob", ActionType: "WS:GET_AUTHORS", Outcome: audit.PermissionDenied})
	_ = l.Close(ctx)

	res, err := sink.Query(ctx, auditbun.Filter{Username: "bob"})
	if err != nil {
		panic(err)
	}
	for _, e := range res.Items {
		fmt.Println(e.Seq, e.Username, e.ActionType, e.Outcome)
	}
	fmt.Println("chain:", sink.Verify(ctx, &audit.ChainVerifier{}))
	// Output:
	// 2 bob WS:GET_AUTHORS permission_denied
	// chain: <nil>
}
