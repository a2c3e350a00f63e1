package archtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/pkgroute/pkgroute"

// leaves import no other pkgroute package except internal ones.
var leaves = []string{"auth", "rbac", "ratelimit", "audit", "command", "repository"}

// allowedFor returns the module-relative packages (and their subtrees) that
// pkg may import, besides internal ones and its own subtree's parents.
func allowedFor(pkg string) (allowed []string, anything bool) {
	top, _, _ := strings.Cut(pkg, "/")
	switch {
	case top == "cmd" || top == "examples":
		return nil, true
	case top == "server" || top == "pkgroutetest":
		// The assembly and the test kit sit above every library package;
		// the test kit may import the assembly, nothing else imports them.
		return []string{"auth", "rbac", "ratelimit", "audit", "command", "repository", "router", "middleware", "server"}, false
	case top == "internal":
		return nil, false
	case pkg == "router":
		return []string{"auth", "rbac"}, false
	case pkg == "rbac":
		// Access rules take the caller's identity: rbac reads auth's
		// Principal (and nothing else of the module).
		return []string{"auth"}, false
	case pkg == "router/ws" || strings.HasPrefix(pkg, "router/ws/"):
		return []string{"router/ws", "router", "auth", "ratelimit"}, false
	case strings.HasPrefix(pkg, "router/"):
		return append([]string{"router", "rbac"}, leaves...), false
	case top == "middleware":
		return append([]string{"middleware"}, leaves...), false
	}
	for _, l := range leaves {
		if pkg == l {
			return nil, false
		}
		if strings.HasPrefix(pkg, l+"/") {
			// Adapters and test kits import their parent.
			return []string{l}, false
		}
	}
	return nil, false
}

func within(pkg, tree string) bool { return pkg == tree || strings.HasPrefix(pkg, tree+"/") }

type listed struct {
	ImportPath string
	Imports    []string
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json", module+"/...").Output()
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(out))
	checked := 0
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		if !within(p.ImportPath, module) || p.ImportPath == module {
			continue
		}
		checked++
		pkg := strings.TrimPrefix(p.ImportPath, module+"/")
		allowed, anything := allowedFor(pkg)
		for _, imp := range p.Imports {
			if !within(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			top, _, _ := strings.Cut(dep, "/")
			if top == "cmd" || top == "examples" {
				t.Errorf("%s imports %s: nothing may import cmd or examples", pkg, dep)
				continue
			}
			if (top == "server" || top == "pkgroutetest") && !anything && !within(pkg, "server") && !within(pkg, "pkgroutetest") {
				t.Errorf("%s imports %s: no library package imports server or pkgroutetest", pkg, dep)
				continue
			}
			// Internal packages, the module's and a subtree's own (which
			// the go tool already keeps to that subtree), are helpers.
			if anything || top == "internal" || strings.Contains(dep, "/internal/") || strings.HasSuffix(dep, "/internal") {
				continue
			}
			ok := false
			for _, a := range allowed {
				if within(dep, a) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s must not import %s (allowed: internal, %s)", pkg, dep, strings.Join(allowed, ", "))
			}
		}
	}
	require.Greater(t, checked, 3, "go list found too few packages")
}

func TestAllowedForTable(t *testing.T) {
	for _, tc := range []struct {
		pkg, dep string
		ok       bool
	}{
		{"router", "auth", true},
		{"router", "ratelimit", false},
		{"auth", "router", false},
		{"auth/keycloak", "auth", true},
		{"auth/keycloak", "rbac", false},
		{"ratelimit/redislimit", "ratelimit", true},
		{"router/ws", "ratelimit", true},
		{"router/ws", "middleware", false},
		{"router/routermw", "audit", true},
		{"middleware", "router", false},
		{"middleware", "auth", true},
		{"rbac", "auth", true},
		{"rbac", "router", false},
		{"auth", "rbac", false},
		{"examples/authorsvc", "router/ws", true},
		{"examples/todo", "server", true},
		{"server", "router/ws", true},
		{"server", "middleware", true},
		{"server", "pkgroutetest", false},
		{"pkgroutetest", "server", true},
		{"pkgroutetest", "auth/authtest", true},
		{"router", "server", false},
		{"middleware", "server", false},
		{"auth/authtest", "pkgroutetest", false},
	} {
		allowed, anything := allowedFor(tc.pkg)
		ok := anything
		for _, a := range allowed {
			ok = ok || within(tc.dep, a)
		}
		require.Equal(t, tc.ok, ok, "%s -> %s", tc.pkg, tc.dep)
	}
}

// TestAuditLinksNoSQL checks that logging audit entries (package audit and
// the router's audit middleware) does not link bun or a database driver:
// the SQL sink lives in audit/auditbun.
func TestAuditLinksNoSQL(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/audit", module+"/router/routermw").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		if dep == "database/sql" { // database/sql/driver comes with uuid
			t.Errorf("audit or router/routermw links %s", dep)
		}
		for _, banned := range []string{"github.com/uptrace/bun", "github.com/jackc/pgx", "modernc.org/sqlite"} {
			if within(dep, banned) {
				t.Errorf("audit or router/routermw links %s", dep)
			}
		}
	}
}
