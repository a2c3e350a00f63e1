package auditbun_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/audit/audittest"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

var plans = flag.Bool("plans", false, "TestQueryPlans: fill a table with -plans.rows entries and print the plan of every query")

var (
	planRows    = flag.Int("plans.rows", 200_000, "rows of TestQueryPlans")
	planIndexes = flag.String("plans.indexes", "", "TestQueryPlans: more indexes to create, as column lists separated by semicolons")
)

// recorder keeps the text of the queries run through a bun.DB.
type recorder struct {
	mu sync.Mutex
	qs []string
}

func (r *recorder) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (r *recorder) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	r.mu.Lock()
	r.qs = append(r.qs, e.Query)
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	qs := r.qs
	r.qs = nil
	return qs
}

// TestQueryPlans prints the plan of each query that Query (with each
// filter of the example's /audit-logs), Get, Verify and Prune run, on a
// table of -plans.rows entries spread like an audited service's over 30
// days: 500 users, 15 action types (one of them 60 % of the rows), 20
// resources, 93 % successes. Run it with
//
//	go test ./audit/auditbun -run TestQueryPlans -plans -v
func TestQueryPlans(t *testing.T) {
	if !*plans {
		t.Skip("run with -plans")
	}
	for _, name := range []string{"postgres", "sqlite"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "audit.db")
			if name == "postgres" {
				dsn = testenv.PostgresURL(t)
			}
			rec := &recorder{}
			db := openDB(t, dsn).WithQueryHook(rec)
			sink := auditbun.New(db, auditbun.Config{})
			require.NoError(t, sink.CreateTable(ctx))
			end := fillPlanTable(t, sink, *planRows)
			for i, cols := range strings.Split(*planIndexes, ";") {
				if cols != "" {
					_, err := db.ExecContext(ctx, fmt.Sprintf("CREATE INDEX ix_extra_%d ON user_actions (%s)", i, cols))
					require.NoError(t, err)
				}
			}
			if name == "postgres" {
				_, err := db.ExecContext(ctx, "ANALYZE user_actions")
				require.NoError(t, err)
			}
			rec.take()
			day := end.Add(-24 * time.Hour)
			filters := []struct {
				name string
				f    auditbun.Filter
			}{
				{"no filter", auditbun.Filter{}},
				{"no filter, page 50", auditbun.Filter{Page: 50}},
				{"user_id", auditbun.Filter{UserID: planUser(7)}},
				{"username", auditbun.Filter{Username: "user-7"}},
				{"action_type (60 %)", auditbun.Filter{ActionType: "WS:GET_AUTHORS"}},
				{"action_type (0.3 %)", auditbun.Filter{ActionType: "HTTP:DELETE"}},
				{"resource", auditbun.Filter{Resource: "/authors/{id}"}},
				{"outcome (93 %)", auditbun.Filter{Outcome: audit.Success}},
				{"outcome (1 %)", auditbun.Filter{Outcome: audit.RateLimited}},
				{"last day", auditbun.Filter{Start: day, End: end}},
				{"user_id + action_type", auditbun.Filter{UserID: planUser(7), ActionType: "WS:CREATE_AUTHOR"}},
				{"user_id + last day", auditbun.Filter{UserID: planUser(7), Start: day, End: end}},
				{"action_type + last day", auditbun.Filter{ActionType: "HTTP:DELETE", Start: day, End: end}},
				{"outcome + last day", auditbun.Filter{Outcome: audit.RateLimited, Start: day, End: end}},
			}
			for _, tc := range filters {
				_, err := sink.Query(ctx, tc.f)
				require.NoError(t, err)
				qs := rec.take()
				require.Len(t, qs, 2)
				explain(t, db, "Query: "+tc.name+" (count)", qs[0])
				explain(t, db, "Query: "+tc.name+" (page)", qs[1])
			}
			res, err := sink.Query(ctx, auditbun.Filter{PerPage: 1})
			require.NoError(t, err)
			rec.take()
			_, err = sink.Get(ctx, res.Items[0].ID.String())
			require.NoError(t, err)
			explain(t, db, "Get", rec.take()[0])
			require.NoError(t, sink.Verify(ctx, &audit.ChainVerifier{}))
			qs := rec.take()
			explain(t, db, "Verify (first page)", qs[1])
			explain(t, db, "Verify (next page)", qs[2])
			q := db.NewDelete().ModelTableExpr("user_actions").Where(`"timestamp" < ?`, end.Add(-29*24*time.Hour)).String()
			explain(t, db, "Prune (1/30 of the rows)", q)
		})
	}
}

// planUser returns the id of user i.
func planUser(i int) string { return fmt.Sprintf("%08d-0000-4000-8000-000000000000", i) }

// fillPlanTable writes n chained entries and returns the time of the last.
func fillPlanTable(t *testing.T, sink *auditbun.Sink, n int) time.Time {
	actions := []string{"WS:GET_AUTHORS", "WS:PING", "WS:CREATE_AUTHOR", "WS:UPDATE_AUTHOR", "WS:DELETE_AUTHOR",
		"WS:CONNECT", "WS:DISCONNECT", "WS:AUTH_FAILED", "HTTP:GET", "HTTP:POST", "HTTP:PUT", "HTTP:DELETE",
		"HTTP:GET_AUDIT_LOGS", "HTTP:LOGIN", "WS:GET_AUTHOR"}
	weights := []int{600, 200, 40, 30, 10, 20, 20, 5, 30, 15, 10, 3, 2, 10, 5} // per 1000
	var cum []int
	sum := 0
	for _, w := range weights {
		sum += w
		cum = append(cum, sum)
	}
	start := time.Now().UTC().Truncate(time.Microsecond).Add(-30 * 24 * time.Hour)
	step := 30 * 24 * time.Hour / time.Duration(n)
	c := &audittest.Chain{}
	var end time.Time
	batch := make([]audit.Entry, 0, 5000)
	for i := range n {
		h := (uint64(i)*0x9E3779B97F4A7C15 ^ uint64(i)>>7) % 1000 // spread, repeatable
		a := 0
		for int(h%uint64(sum)) >= cum[a] {
			a++
		}
		id, err := uuid.NewV7()
		require.NoError(t, err)
		end = start.Add(time.Duration(i) * step)
		u := int(h*7919) % 500
		e := audit.Entry{ID: id, Timestamp: end, UserID: planUser(u), Username: fmt.Sprintf("user-%d", u),
			UserRoles: []string{"get-authors"}, ActionType: actions[a], Resource: fmt.Sprintf("/authors/%d", h%19),
			Outcome: audit.Success, IPAddress: "10.0.0.1", UserAgent: "ua", RequestID: uuid.NewString(),
			ResponseStatus: audit.Status(0), DurationMS: 1}
		if h%20 == 0 {
			e.Resource = "/authors/{id}"
		}
		switch {
		case h%100 < 4:
			e.Outcome = audit.Error
		case h%100 < 6:
			e.Outcome = audit.PermissionDenied
		case h%100 < 7:
			e.Outcome = audit.RateLimited
		}
		if h%20 == 1 {
			e.UserID, e.Username = "", ""
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) || i == n-1 {
			require.NoError(t, sink.Write(context.Background(), c.Link(batch)))
			batch = batch[:0]
		}
	}
	return end
}

func explain(t *testing.T, db *bun.DB, name, q string) {
	t.Helper()
	var lines []string
	if db.Dialect().Name() == dialect.PG {
		rows, err := db.DB.QueryContext(context.Background(), "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF) "+q)
		require.NoError(t, err)
		for rows.Next() {
			var l string
			require.NoError(t, rows.Scan(&l))
			lines = append(lines, l)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	} else {
		rows, err := db.DB.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q)
		require.NoError(t, err)
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			lines = append(lines, detail)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}
	t.Logf("\n-- %s\n%s\n%s", name, q, strings.Join(lines, "\n"))
}
