package keycloak_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/keycloak"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/testenv"
)

// startKeycloakMock starts testdata/keycloak-mock.mjs, an identity provider
// built on the npm package oauth2-mock-server that we did not write, and
// returns its base URL. The package is looked up in the node_modules folder
// named by PKGROUTE_OAUTH2_MOCK_SERVER, else in .ci/node_modules at the
// repository root (where CI installs it). The test is skipped when Node or
// the package is missing, and fails then under PKGROUTE_REQUIRE_SERVICES=1
// (CI).
func startKeycloakMock(t *testing.T, realm, clientID string, users map[string]any) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Unavailable(t, "node is not installed; the oauth2-mock-server interoperability test needs it")
	}
	modules := os.Getenv("PKGROUTE_OAUTH2_MOCK_SERVER")
	if modules == "" {
		modules = filepath.Join("..", "..", ".ci", "node_modules")
	}
	entry, err := filepath.Abs(filepath.Join(modules, "oauth2-mock-server", "dist", "index.mjs"))
	require.NoError(t, err)
	if _, err := os.Stat(entry); err != nil {
		testenv.Unavailable(t, fmt.Sprintf("oauth2-mock-server is not installed at %s (npm install --prefix .ci oauth2-mock-server@8)", modules))
	}
	usersJSON, err := json.Marshal(users)
	require.NoError(t, err)

	cmd := exec.Command(node, filepath.Join("testdata", "keycloak-mock.mjs"))
	cmd.Env = append(os.Environ(),
		"OAUTH2_MOCK_SERVER_MODULE="+entry, "REALM="+realm, "CLIENT_ID="+clientID, "USERS="+string(usersJSON))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close() // the script stops when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var ready struct {
		Port int `json:"port"`
	}
	select {
	case line, ok := <-lines:
		require.True(t, ok, "keycloak-mock.mjs exited before listening")
		require.NoError(t, json.Unmarshal([]byte(line), &ready))
	case <-time.After(20 * time.Second):
		t.Fatal("keycloak-mock.mjs did not start within 20 s")
	}
	return "http://127.0.0.1:" + strconv.Itoa(ready.Port)
}

// TestOAuth2MockServerInterop checks the verifier and the login client
// against an OpenID Connect server we did not write.
func TestOAuth2MockServerInterop(t *testing.T) {
	base := startKeycloakMock(t, "shop", "authorsvc", map[string]any{
		"ada": map[string]any{"password": "lovelace", "roles": []string{"get-authors", "create-author"}},
	})
	ctx := context.Background()
	v, err := keycloak.NewVerifier(ctx, keycloak.Config{BaseURL: base, Realm: "shop", ClientID: "authorsvc"})
	require.NoError(t, err)
	defer v.Close()
	c, err := keycloak.NewClient(keycloak.ClientConfig{BaseURL: base, Realm: "shop", ClientID: "authorsvc", Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	defer c.Close()

	raw, err := c.Login(ctx, "ada", "lovelace")
	require.NoError(t, err)
	var tr struct {
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
	}
	require.NoError(t, json.Unmarshal(raw, &tr))
	assert.Equal(t, "Bearer", tr.TokenType)

	p, err := v.Authenticate(ctx, tr.AccessToken)
	require.NoError(t, err, "an RS256 token of oauth2-mock-server verifies")
	assert.Equal(t, "ada", p.Username)
	assert.Equal(t, "user-ada", p.ID)
	assert.Equal(t, []string{"get-authors", "create-author"}, p.Roles)

	_, err = v.Authenticate(ctx, tr.IDToken)
	require.ErrorIs(t, err, auth.ErrInvalidCredentials, "an ID token is not an access token")

	_, err = c.Refresh(ctx, tr.RefreshToken)
	require.NoError(t, err)

	for range 20 {
		_, err := c.Login(ctx, "ada", "wrong")
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		assert.Equal(t, http.StatusUnauthorized, errkind.Of(err).HTTPStatus())
	}
	assert.Equal(t, "closed", c.BreakerState(), "wrong passwords do not trip the breaker")
	_, err = c.Login(ctx, "ada", "lovelace")
	require.NoError(t, err)
}
