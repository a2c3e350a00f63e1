package rbac

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pkgroute/pkgroute/auth"
)

// Access says who may call an operation; the values are those of the
// package catalogue.
type Access string

// Access levels.
const (
	// Public operations need no credentials.
	Public Access = "public"
	// Authenticated operations need a principal and no particular role.
	Authenticated Access = "authenticated"
	// RolesRequired operations need a principal holding all of Rule.Roles.
	RolesRequired Access = "roles"
)

// Rule is one operation and who may call it. Apps build rules from the
// router's route listing and from their HTTP routes.
type Rule struct {
	// Transport groups the rule, e.g. "ws", "http", "push".
	Transport string
	// Name identifies the operation within its transport, e.g.
	// "GET_AUTHORS (1)" or "GET /api/authors".
	Name string
	// Access is who may call it. Empty means RolesRequired when Roles is
	// non-empty, else Authenticated.
	Access Access
	// Roles are all required when Access is RolesRequired.
	Roles []string
}

// Allows reports whether p (nil for an anonymous caller) may call the
// operation.
func (r Rule) Allows(p *auth.Principal) bool {
	switch r.Access {
	case Public:
		return true
	case Authenticated:
		return p != nil
	default:
		return p != nil && HasAll(p.Roles, r.Roles)
	}
}

// Table is a permission table: every operation of an app and who may call
// it. It is immutable and safe for concurrent use.
type Table struct {
	rules []Rule
}

// NewTable returns a table of rules sorted by transport and name. It panics
// on a registration mistake: a duplicate transport and name, an unknown
// access level, RolesRequired without roles, or roles on a public or
// authenticated rule.
func NewTable(rules ...Rule) *Table {
	t := &Table{rules: make([]Rule, 0, len(rules))}
	seen := make(map[[2]string]bool, len(rules))
	for _, r := range rules {
		r.Roles = slices.Clone(r.Roles)
		if r.Access == "" {
			r.Access = Authenticated
			if len(r.Roles) > 0 {
				r.Access = RolesRequired
			}
		}
		switch {
		case r.Access != Public && r.Access != Authenticated && r.Access != RolesRequired:
			panic(fmt.Sprintf("rbac: rule %s %q: unknown access %q", r.Transport, r.Name, r.Access))
		case r.Access == RolesRequired && len(r.Roles) == 0:
			panic(fmt.Sprintf("rbac: rule %s %q: access roles without roles", r.Transport, r.Name))
		case r.Access != RolesRequired && len(r.Roles) > 0:
			panic(fmt.Sprintf("rbac: rule %s %q: access %s with roles %v", r.Transport, r.Name, r.Access, r.Roles))
		}
		k := [2]string{r.Transport, r.Name}
		if seen[k] {
			panic(fmt.Sprintf("rbac: duplicate rule %s %q", r.Transport, r.Name))
		}
		seen[k] = true
		if r.Roles == nil {
			r.Roles = []string{}
		}
		t.rules = append(t.rules, r)
	}
	slices.SortFunc(t.rules, func(a, b Rule) int {
		return cmp.Or(cmp.Compare(a.Transport, b.Transport), cmp.Compare(a.Name, b.Name))
	})
	return t
}

// Rules returns a copy of all rules, sorted by transport and name.
func (t *Table) Rules() []Rule {
	out := make([]Rule, len(t.rules))
	for i, r := range t.rules {
		r.Roles = slices.Clone(r.Roles)
		out[i] = r
	}
	return out
}

// Lookup returns the rule of an operation.
func (t *Table) Lookup(transport, name string) (Rule, bool) {
	for _, r := range t.rules {
		if r.Transport == transport && r.Name == name {
			r.Roles = slices.Clone(r.Roles)
			return r, true
		}
	}
	return Rule{}, false
}

// Allowed returns the rules p (nil for an anonymous caller) may call.
func (t *Table) Allowed(p *auth.Principal) []Rule {
	var out []Rule
	for _, r := range t.rules {
		if r.Allows(p) {
			r.Roles = slices.Clone(r.Roles)
			out = append(out, r)
		}
	}
	return out
}

// Roles returns every role the table mentions, sorted.
func (t *Table) Roles() []string {
	var out []string
	for _, r := range t.rules {
		out = append(out, r.Roles...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// WriteTo writes the table as aligned text: transport, name, access and
// roles, one rule a line, under a header line.
func (t *Table) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	tw := tabwriter.NewWriter(cw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSPORT\tNAME\tACCESS\tROLES")
	for _, r := range t.rules {
		roles := strings.Join(r.Roles, ",")
		if roles == "" {
			roles = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Transport, r.Name, r.Access, roles)
	}
	err := tw.Flush()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
