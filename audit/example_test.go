package audit_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pkgroute/pkgroute/audit"
)

func ExampleLogger() {
	sink := audit.SinkFunc(func(_ context.Context, entries []audit.Entry) error {
		for _, e := range entries {
			fmt.Println(e.ActionType, e.Username, e.Outcome, string(e.RequestData))
		}
		return nil
	})
	l := audit.New(audit.Config{Sink: sink})
	ctx := context.Background()
	// In an application: go l.Run(ctx), and l.Close(shutdownCtx) at exit.
	_ = l.Log(ctx, audit.Entry{
		Username:    "ada",
		ActionType:  "WS:CREATE_AUTHOR",
		RequestData: json.RawMessage(`{"name":"Ada","Password":"s3cret"}`),
	})
	_ = l.Close(ctx)
	st := l.Stats()
	fmt.Println(st.Produced, st.Written, st.Dropped())
	// Output:
	// WS:CREATE_AUTHOR ada success {"Password":"[REDACTED]","name":"Ada"}
	// 1 1 0
}
