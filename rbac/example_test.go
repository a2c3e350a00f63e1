package rbac_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/rbac"
)

func ExampleHasAll() {
	held := []string{"get-authors", "create-author"}
	fmt.Println(rbac.HasAll(held, []string{"get-authors"}))
	fmt.Println(rbac.HasAll(held, []string{"get-authors", "delete-author"}))
	fmt.Println(rbac.Missing(held, []string{"get-authors", "delete-author"}))
	// Output:
	// true
	// false
	// [delete-author]
}

func ExampleRequireRoles() {
	deleteAuthor := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	h := rbac.RequireRoles("delete-author", "admin")(deleteAuthor)

	// auth.Middleware puts the principal in the context; here it is done by hand.
	r := httptest.NewRequest(http.MethodDelete, "/api/authors/7", nil)
	r = r.WithContext(auth.NewContext(r.Context(), &auth.Principal{Username: "ada", Roles: []string{"delete-author"}}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 403 {"error":{"code":"permission_denied","msg":"Missing required roles: admin","details":null}}
}

func ExampleTable() {
	tab := rbac.NewTable(
		rbac.Rule{Transport: "ws", Name: "GET_AUTHORS (1)", Roles: []string{"get-authors"}},
		rbac.Rule{Transport: "ws", Name: "PING (10)", Access: rbac.Public},
		rbac.Rule{Transport: "http", Name: "DELETE /api/authors/{id}", Roles: []string{"delete-author", "admin"}},
		rbac.Rule{Transport: "http", Name: "GET /api/me", Access: rbac.Authenticated},
	)
	_, _ = tab.WriteTo(os.Stdout)

	for _, r := range tab.Allowed(&auth.Principal{Roles: []string{"get-authors"}}) {
		fmt.Println("may call:", r.Transport, r.Name)
	}
	// Output:
	// TRANSPORT  NAME                      ACCESS         ROLES
	// http       DELETE /api/authors/{id}  roles          delete-author,admin
	// http       GET /api/me               authenticated  -
	// ws         GET_AUTHORS (1)           roles          get-authors
	// ws         PING (10)                 public         -
	// may call: http GET /api/me
	// may call: ws GET_AUTHORS (1)
	// may call: ws PING (10)
}
