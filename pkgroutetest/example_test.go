package pkgroutetest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/pkgroute/pkgroute/pkgroutetest"
	"github.com/pkgroute/pkgroute/router"
)

// Greeting is the output of the example's package.
type Greeting struct {
	Text string `json:"text"`
}

// AppID is the application's package id type.
type AppID int32

// newGreeter is the application's router: GREET (pkg_id 1) needs role greet.
func newGreeter() *router.PackageRouter[AppID] {
	r := router.New[AppID](router.Config{})
	router.Handle(r, 1, func(_ context.Context, in struct {
		Name string `json:"name"`
	}) (Greeting, error) {
		return Greeting{Text: "hello, " + in.Name}, nil
	}, router.Roles("greet"))
	return r
}

// A handler test: typed input and output, no JSON, no req_id, the caller's
// roles last.
func Example() {
	testGreet := func(t *testing.T) {
		r := newGreeter()
		out := pkgroutetest.Call[Greeting](t, r, 1, map[string]string{"name": "Ada"}, "greet")
		if out.Text != "hello, Ada" {
			t.Errorf("got %q", out.Text)
		}
		pkgroutetest.Send(t, r, 1, map[string]string{"name": "Ada"}, "other").RequireCode(t, "permission_denied")
	}
	fmt.Println(testing.RunTests(func(string, string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "TestGreet", F: testGreet}}))
	// Output:
	// true
}
