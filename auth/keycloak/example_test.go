package keycloak_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
)

// The verifier checks tokens of a realm; here the realm is served by the
// test issuer of package authtest.
func ExampleVerifier() {
	iss, _ := authtest.New(authtest.Config{Realm: "shop", ClientID: "authorsvc"})
	idp := httptest.NewServer(iss.Handler())
	defer idp.Close()
	iss.SetBaseURL(idp.URL)

	ctx := context.Background()
	v, err := keycloak.NewVerifier(ctx, keycloak.Config{BaseURL: idp.URL, Realm: "shop", ClientID: "authorsvc"})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	go func() { _ = v.Run(ctx) }() // background key refresh until Close

	p, err := v.Authenticate(ctx, iss.Token("ada", "get-authors"))
	fmt.Println(p.Username, p.Roles, err)

	claims := iss.Claims("ada")
	claims["azp"] = "another-client"
	_, err = v.Authenticate(ctx, mustSignClaims(iss, claims))
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials))
	// Output:
	// ada [get-authors] <nil>
	// true
}

func mustSignClaims(iss *authtest.Issuer, c jwt.MapClaims) string {
	tok, err := iss.Sign(c)
	if err != nil {
		panic(err)
	}
	return tok
}

// The client logs users in; a wrong password is an authentication failure,
// never a failure of the identity provider.
func ExampleClient() {
	iss, _ := authtest.New(authtest.Config{Realm: "shop", ClientID: "authorsvc",
		Users: []authtest.User{{Username: "ada", Password: "lovelace", Roles: []string{"get-authors"}}}})
	idp := httptest.NewServer(iss.Handler())
	defer idp.Close()
	iss.SetBaseURL(idp.URL)

	c, err := keycloak.NewClient(keycloak.ClientConfig{BaseURL: idp.URL, Realm: "shop", ClientID: "authorsvc"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()

	tokens, err := c.Login(ctx, "ada", "lovelace") // the token response, unchanged
	fmt.Println(len(tokens) > 0, err)

	_, err = c.Login(ctx, "ada", "wrong")
	fmt.Println(errors.Is(err, auth.ErrInvalidCredentials), c.BreakerState())

	iss.Fail(http.StatusServiceUnavailable)
	_, err = c.Login(ctx, "ada", "lovelace")
	fmt.Println(errors.Is(err, keycloak.ErrUnavailable))
	// Output:
	// true <nil>
	// true closed
	// true
}
