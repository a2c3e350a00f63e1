package router_test

import (
	"context"
	"testing"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/router"
	"github.com/stretchr/testify/assert"
)

// TestHandlersFindTheirCallerInContext: a typed handler (and the command
// it calls) reads the caller with auth.FromContext, also when Dispatch is
// called in process with a context that does not carry it.
func TestHandlersFindTheirCallerInContext(t *testing.T) {
	type in struct{}
	var seen *auth.Principal
	r := router.New[int32](router.Config{})
	router.Handle(r, 1, func(ctx context.Context, _ in) (string, error) {
		seen = auth.FromContext(ctx)
		return "", nil
	}, router.Authenticated())
	ada := &auth.Principal{ID: "u-1", Username: "ada"}
	reply := r.Dispatch(context.Background(), ada, []byte(`{"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{}}`))
	assert.Contains(t, string(reply), `"status_code":0`)
	assert.Same(t, ada, seen)

	// A context that already carries the caller is kept as it is.
	ctx := auth.NewContext(context.Background(), ada)
	r.Dispatch(ctx, ada, []byte(`{"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{}}`))
	assert.Same(t, ada, seen)
}
