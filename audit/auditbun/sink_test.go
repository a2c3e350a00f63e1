package auditbun_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/auditbun"
	"github.com/pkgroute/pkgroute/audit/audittest"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// forEachDB runs fn against a fresh table on SQLite and on PostgreSQL.
func forEachDB(t *testing.T, fn func(t *testing.T, db *bun.DB, sink *auditbun.Sink)) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			var db *bun.DB
			if name == "sqlite" {
				db = openSQLite(t)
			} else {
				db = openPostgres(t, testenv.PostgresURL(t))
			}
			sink := auditbun.New(db, auditbun.Config{})
			require.NoError(t, sink.CreateTable(context.Background()))
			require.NoError(t, sink.CreateTable(context.Background()), "idempotent")
			fn(t, db, sink)
		})
	}
}

func fullEntry(t testing.TB, i int) audit.Entry {
	id, err := uuid.NewV7()
	require.NoError(t, err)
	return audit.Entry{
		ID:             id,
		Timestamp:      time.Date(2025, 3, 1, 12, 0, i, 123456000, time.UTC),
		UserID:         "user-1",
		Username:       "ada",
		UserRoles:      []string{"get-authors", "admin"},
		ActionType:     "WS:GET_AUTHORS",
		Resource:       "1",
		Outcome:        audit.Success,
		IPAddress:      "10.0.0.1",
		UserAgent:      "test-agent/1.0",
		RequestID:      "req-1",
		RequestData:    json.RawMessage(`{"page": 1, "name": "it's"}`),
		ResponseStatus: audit.Status(0),
		ErrorMessage:   "",
		DurationMS:     1.234,
	}
}

func TestSinkWriteGet(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *bun.DB, sink *auditbun.Sink) {
		ctx := context.Background()
		a := fullEntry(t, 1)
		b := audit.Entry{ID: uuid.New(), Timestamp: time.Now().UTC().Truncate(time.Microsecond), ActionType: "HTTP:GET", Outcome: audit.Error,
			Resource: `a?b'c\\d"e ?TableName $1 -- x`, UserAgent: "é ü 日本 😀", UserRoles: []string{}, DurationMS: -0.001}
		require.NoError(t, sink.Write(ctx, []audit.Entry{a, b}))
		require.NoError(t, sink.Write(ctx, []audit.Entry{a, b}), "a retried batch is not an error")
		n, err := db.NewSelect().Table("user_actions").Count(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 2, n, "no duplicates")

		got, err := sink.Get(ctx, a.ID.String())
		require.NoError(t, err)
		assert.Equal(t, a, got)
		got, err = sink.Get(ctx, b.ID.String())
		require.NoError(t, err)
		assert.Equal(t, b, got)
		assert.Nil(t, got.ResponseStatus)
		assert.Equal(t, []string{}, got.UserRoles)
		assert.Nil(t, got.RequestData)

		for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
			_, err = sink.Get(ctx, id)
			require.ErrorIs(t, err, auditbun.ErrNotFound)
			assert.Equal(t, errkind.NotFound, errkind.Of(err))
		}
		js, err := json.Marshal(got)
		require.NoError(t, err)
		for _, k := range []string{"id", "timestamp", "user_id", "username", "user_roles", "action_type", "resource", "outcome",
			"ip_address", "user_agent", "request_id", "request_data", "response_status", "error_message", "duration_ms"} {
			assert.Contains(t, string(js), `"`+k+`":`)
		}
	})
}

func TestSinkQuery(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *bun.DB, sink *auditbun.Sink) {
		ctx := context.Background()
		base := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
		var all []audit.Entry
		users := []string{"u1", "u2", "u3"}
		actions := []string{"WS:A", "WS:B", "HTTP:GET"}
		outcomes := []audit.Outcome{audit.Success, audit.Error, audit.PermissionDenied, audit.RateLimited}
		for i := range 60 {
			e := audit.Entry{
				ID:         uuid.New(),
				Timestamp:  base.Add(time.Duration(i) * time.Hour),
				UserID:     users[i%3],
				Username:   "name-" + users[i%3],
				ActionType: actions[(i/3)%3],
				Resource:   []string{"r1", "r2"}[i%2],
				Outcome:    outcomes[i%4],
			}
			all = append(all, e)
		}
		require.NoError(t, sink.Write(ctx, all))

		match := func(f auditbun.Filter) []audit.Entry {
			var out []audit.Entry
			for i := len(all) - 1; i >= 0; i-- {
				e := all[i]
				if (f.UserID == "" || e.UserID == f.UserID) && (f.Username == "" || e.Username == f.Username) &&
					(f.ActionType == "" || e.ActionType == f.ActionType) && (f.Resource == "" || e.Resource == f.Resource) &&
					(f.Outcome == "" || e.Outcome == f.Outcome) && (f.Start.IsZero() || !e.Timestamp.Before(f.Start)) &&
					(f.End.IsZero() || !e.Timestamp.After(f.End)) {
					out = append(out, e)
				}
			}
			return out
		}
		filters := map[string]auditbun.Filter{
			"none":        {},
			"user id":     {UserID: "u2"},
			"username":    {Username: "name-u3"},
			"action type": {ActionType: "WS:B"},
			"resource":    {Resource: "r2"},
			"outcome":     {Outcome: audit.PermissionDenied},
			"start":       {Start: base.Add(50 * time.Hour)},
			"end":         {End: base.Add(5*time.Hour + 30*time.Minute)},
			"start+end":   {Start: base.Add(10 * time.Hour), End: base.Add(20 * time.Hour)},
			"combined":    {UserID: "u1", ActionType: "WS:A", Outcome: audit.Success, Start: base.Add(1 * time.Hour), End: base.Add(59 * time.Hour)},
			"no match":    {UserID: "u1", Username: "name-u2"},
			"sub-second":  {Start: base.Add(10*time.Hour + time.Microsecond), End: base.Add(11 * time.Hour)},
		}
		for name, f := range filters {
			want := match(f)
			f.PerPage = 1000
			res, err := sink.Query(ctx, f)
			require.NoError(t, err, name)
			require.Len(t, res.Items, len(want), name)
			for i := range want {
				assert.Equal(t, want[i].ID, res.Items[i].ID, "%s: newest first", name)
			}
			assert.Equal(t, len(want), res.Meta.Total, name)
		}

		res, err := sink.Query(ctx, auditbun.Filter{UserID: "u1", Page: 2, PerPage: 7})
		require.NoError(t, err)
		want := match(auditbun.Filter{UserID: "u1"})
		require.Len(t, res.Items, 7)
		assert.Equal(t, want[7].ID, res.Items[0].ID)
		assert.Equal(t, auditbun.Meta{Page: 2, PerPage: 7, Total: 20, Pages: 3, HasMore: true}, res.Meta)
		res, err = sink.Query(ctx, auditbun.Filter{UserID: "u1", Page: 3, PerPage: 7})
		require.NoError(t, err)
		assert.Len(t, res.Items, 6)
		assert.False(t, res.Meta.HasMore)
		res, err = sink.Query(ctx, auditbun.Filter{Page: 9})
		require.NoError(t, err)
		assert.NotNil(t, res.Items)
		assert.Empty(t, res.Items)
		assert.Equal(t, auditbun.Meta{Page: 9, PerPage: 20, Total: 60, Pages: 3}, res.Meta)
		js, err := json.Marshal(res.Meta)
		require.NoError(t, err)
		assert.JSONEq(t, `{"page":9,"per_page":20,"total":60,"pages":3,"next_cursor":null,"has_more":false}`, string(js))

		for f, path := range map[auditbun.Filter]string{{Page: -1}: "/page", {PerPage: -1}: "/per_page", {PerPage: 1001}: "/per_page"} {
			_, err := sink.Query(ctx, f)
			require.ErrorIs(t, err, auditbun.ErrInvalidFilter)
			assert.Equal(t, errkind.InvalidData, errkind.Of(err))
			if d, ok := errkind.DetailsOf(err).([]errkind.Field); assert.True(t, ok) && assert.Len(t, d, 1) {
				assert.Equal(t, path, d[0].Path)
			}
		}
	})
}

func TestSinkPrune(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *bun.DB, sink *auditbun.Sink) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		var es []audit.Entry
		for i := range 10 {
			es = append(es, audit.Entry{ID: uuid.New(), Timestamp: now.Add(-time.Duration(i) * 24 * time.Hour), ActionType: "A", Outcome: audit.Success})
		}
		require.NoError(t, sink.Write(ctx, es))
		n, err := sink.Prune(ctx, 72*time.Hour+time.Hour)
		require.NoError(t, err)
		assert.Equal(t, int64(6), n)
		res, err := sink.Query(ctx, auditbun.Filter{})
		require.NoError(t, err)
		assert.Equal(t, 4, res.Meta.Total)
	})
}

func TestLoggerRetentionJob(t *testing.T) {
	db := openSQLite(t)
	sink := auditbun.New(db, auditbun.Config{Table: "audit_retention"})
	ctx := context.Background()
	require.NoError(t, sink.CreateTable(ctx))
	require.NoError(t, sink.Write(ctx, []audit.Entry{{ID: uuid.New(), Timestamp: time.Now().Add(-48 * time.Hour), ActionType: "OLD", Outcome: audit.Success}}))
	l := audit.New(audit.Config{Sink: sink, BatchTimeout: time.Millisecond})
	closeFn := run(t, l)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- audit.Retention{Pruner: sink, MaxAge: 24 * time.Hour, Interval: 10 * time.Millisecond}.Run(rctx)
	}()
	require.NoError(t, l.Log(ctx, audit.Entry{ActionType: "NEW"}))
	waitFor(t, 5*time.Second, func() bool {
		res, err := sink.Query(ctx, auditbun.Filter{})
		return err == nil && len(res.Items) == 1 && res.Items[0].ActionType == "NEW"
	})
	stop()
	require.NoError(t, <-done)
	require.NoError(t, closeFn(5*time.Second))
}

func TestSinkChainTampering(t *testing.T) {
	type tamper struct {
		name    string
		sql     []string
		wantSeq int64
	}
	tampers := []tamper{
		{"untouched", nil, 0},
		{"edit a row", []string{`UPDATE user_actions SET outcome = 'success' WHERE chain_seq = 5`}, 5},
		{"edit request data", []string{`UPDATE user_actions SET request_data = '{"page": 2}' WHERE chain_seq = 9`}, 9},
		{"delete a row", []string{`DELETE FROM user_actions WHERE chain_seq = 7`}, 7},
		{"delete the first row", []string{`DELETE FROM user_actions WHERE chain_seq = 1`}, 1},
		{"delete the last row", []string{`DELETE FROM user_actions WHERE chain_seq = 12`}, 12},
		{"delete the last two rows", []string{`DELETE FROM user_actions WHERE chain_seq >= 11`}, 11},
		{"delete the last row and the head", []string{
			`DELETE FROM user_actions WHERE chain_seq = 12`,
			`DELETE FROM user_actions_chain_head`,
		}, 11},
		{"reorder rows", []string{
			`UPDATE user_actions SET chain_seq = -1 WHERE chain_seq = 3`,
			`UPDATE user_actions SET chain_seq = 3 WHERE chain_seq = 4`,
			`UPDATE user_actions SET chain_seq = 4 WHERE chain_seq = -1`,
		}, 3},
	}
	forEachDB(t, func(t *testing.T, db *bun.DB, sink *auditbun.Sink) {
		ctx := context.Background()
		for _, tc := range tampers {
			t.Run(tc.name, func(t *testing.T) {
				_, err := db.ExecContext(ctx, `DELETE FROM user_actions`)
				require.NoError(t, err)
				_, err = db.ExecContext(ctx, `DELETE FROM user_actions_chain_head`)
				require.NoError(t, err)
				key := []byte("secret-key")
				// Two loggers in turn: the second continues the stored chain.
				for round := range 2 {
					l := audit.New(audit.Config{Sink: sink, Chain: true, ChainKey: key, BatchSize: 3})
					for i := range 6 {
						e := fullEntry(t, round*6+i)
						e.ID = uuid.Nil
						e.Outcome = audit.Error
						require.NoError(t, l.Log(ctx, e))
					}
					require.NoError(t, l.Close(ctx))
					seq, _ := l.ChainHead()
					require.Equal(t, int64(6*(round+1)), seq)
				}
				for _, q := range tc.sql {
					_, err := db.ExecContext(ctx, q)
					require.NoError(t, err)
				}
				v := &audit.ChainVerifier{Key: key}
				err = sink.Verify(ctx, v)
				if tc.wantSeq == 0 {
					require.NoError(t, err)
					seq, _, n := v.Head()
					assert.Equal(t, int64(12), seq)
					assert.Equal(t, 12, n)
					return
				}
				var b *audit.Break
				require.ErrorAs(t, err, &b)
				assert.Equal(t, tc.wantSeq, b.Seq, b.Error())
			})
		}
	})
}

// logChained logs n chained entries through a new Logger on sink (as a
// restarted process would) and closes it.
func logChained(t *testing.T, sink *auditbun.Sink, key []byte, n int) *audit.Logger {
	t.Helper()
	ctx := context.Background()
	l := audit.New(audit.Config{Sink: sink, Chain: true, ChainKey: key, BatchSize: 2})
	for i := range n {
		e := fullEntry(t, i)
		e.ID = uuid.Nil
		require.NoError(t, l.Log(ctx, e))
	}
	require.NoError(t, l.Close(ctx))
	requireConserved(t, l.Stats())
	return l
}

func TestSinkChainHeadSurvivesTruncation(t *testing.T) {
	key := []byte("secret-key")
	forEachDB(t, func(t *testing.T, db *bun.DB, sink *auditbun.Sink) {
		ctx := context.Background()
		exec := func(t *testing.T, q string) {
			t.Helper()
			_, err := db.ExecContext(ctx, q)
			require.NoError(t, err)
		}
		reset := func(t *testing.T) {
			exec(t, `DELETE FROM user_actions`)
			exec(t, `DELETE FROM user_actions_chain_head`)
		}
		verify := func(t *testing.T) (*audit.ChainVerifier, error) {
			v := &audit.ChainVerifier{Key: key}
			return v, sink.Verify(ctx, v)
		}

		t.Run("restart", func(t *testing.T) {
			reset(t)
			first := logChained(t, sink, key, 5)
			seq, hash, err := sink.ChainHead(ctx)
			require.NoError(t, err)
			wantSeq, wantHash := first.ChainHead()
			assert.Equal(t, int64(5), seq)
			assert.Equal(t, wantHash, hash)
			assert.Equal(t, wantSeq, seq)

			second := logChained(t, sink, key, 4)
			seq, hash, err = sink.ChainHead(ctx)
			require.NoError(t, err)
			_, wantHash = second.ChainHead()
			assert.Equal(t, int64(9), seq)
			assert.Equal(t, wantHash, hash)
			v, err := verify(t)
			require.NoError(t, err)
			seq, _, n := v.Head()
			assert.Equal(t, int64(9), seq)
			assert.Equal(t, 9, n)
		})

		t.Run("delete the last row", func(t *testing.T) {
			reset(t)
			logChained(t, sink, key, 5)
			exec(t, `DELETE FROM user_actions WHERE chain_seq = 5`)
			_, err := verify(t)
			var b *audit.Break
			require.ErrorAs(t, err, &b)
			assert.Equal(t, int64(5), b.Seq, b.Error())
			assert.Empty(t, b.ID)
			seq, _, err := sink.ChainHead(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(5), seq, "deleting rows does not move the head")
		})

		t.Run("delete the last row, restart and log more", func(t *testing.T) {
			reset(t)
			logChained(t, sink, key, 5)
			exec(t, `DELETE FROM user_actions WHERE chain_seq = 5`)
			l := logChained(t, sink, key, 3)
			seq, _ := l.ChainHead()
			assert.Equal(t, int64(8), seq, "the new Logger continues from the stored head")
			_, err := verify(t)
			var b *audit.Break
			require.ErrorAs(t, err, &b)
			assert.Equal(t, int64(5), b.Seq, b.Error())
			assert.Contains(t, b.Reason, "found seq 6")
		})

		t.Run("rewrite the last row of a chain without a key", func(t *testing.T) {
			reset(t)
			logChained(t, sink, nil, 5)
			res, err := sink.Query(ctx, auditbun.Filter{})
			require.NoError(t, err)
			var last audit.Entry
			for _, e := range res.Items {
				if e.Seq == 5 {
					last = e
				}
			}
			require.Equal(t, int64(5), last.Seq)
			last.Resource = "forged"
			_, err = db.ExecContext(ctx, `UPDATE user_actions SET resource = ?, hash = ? WHERE chain_seq = 5`,
				last.Resource, audit.ChainHash(last, nil))
			require.NoError(t, err)
			err = sink.Verify(ctx, &audit.ChainVerifier{})
			var b *audit.Break
			require.ErrorAs(t, err, &b)
			assert.Equal(t, int64(5), b.Seq, b.Error())
			assert.Contains(t, b.Reason, "chain head")
		})

		t.Run("unchained entries leave the head alone", func(t *testing.T) {
			reset(t)
			l := audit.New(audit.Config{Sink: sink})
			require.NoError(t, l.Log(ctx, fullEntry(t, 1)))
			require.NoError(t, l.Close(ctx))
			seq, hash, err := sink.ChainHead(ctx)
			require.NoError(t, err)
			assert.Zero(t, seq)
			assert.Empty(t, hash)
			_, err = verify(t)
			require.NoError(t, err)
		})
	})
}

func TestSinkTableName(t *testing.T) {
	db := openSQLite(t)
	long := strings.Repeat("a", 52)
	sink := auditbun.New(db, auditbun.Config{Table: long})
	require.NoError(t, sink.CreateTable(context.Background()))
	n, err := db.NewSelect().Table(long + auditbun.ChainHeadSuffix).Count(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n)
	for _, name := range []string{long + "a", "1abc", "a-b", `a"b`, "Audit"} {
		assert.Panics(t, func() { auditbun.New(db, auditbun.Config{Table: name}) }, name)
	}
}

func TestSinkIndexes(t *testing.T) {
	// The indexes that a query plan uses (see docs/audit.md).
	want := []string{"ix_user_actions_action_type", "ix_user_actions_chain_seq", "ix_user_actions_outcome",
		"ix_user_actions_timestamp", "ix_user_actions_user_id_action_type", "ix_user_actions_user_id_timestamp",
		"ix_user_actions_username"}
	forEachDB(t, func(t *testing.T, db *bun.DB, sink *auditbun.Sink) {
		ctx := context.Background()
		names := func() []string {
			q := `SELECT indexname FROM pg_indexes WHERE tablename = 'user_actions' AND indexname LIKE 'ix\_%' ORDER BY indexname`
			if db.Dialect().Name() == dialect.SQLite {
				q = `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'user_actions' AND name LIKE 'ix\_%' ESCAPE '\' ORDER BY name`
			}
			var names []string
			require.NoError(t, db.NewRaw(q).Scan(ctx, &names))
			return names
		}
		assert.Equal(t, want, names())
		// A table of an earlier version loses the indexes no query uses.
		for _, old := range []string{`CREATE INDEX ix_user_actions_user_id ON user_actions (user_id)`,
			`CREATE INDEX ix_user_actions_request_id ON user_actions (request_id)`} {
			_, err := db.ExecContext(ctx, old)
			require.NoError(t, err)
		}
		require.Len(t, names(), len(want)+2)
		require.NoError(t, sink.CreateTable(ctx))
		assert.Equal(t, want, names())
	})
}

// A table whose column types differ from CreateTable's (migrated by hand)
// is written with the rows encoded by pgx for the types found.
func TestSinkPostgresOtherColumnTypes(t *testing.T) {
	db := openPostgres(t, testenv.PostgresURL(t))
	ctx := context.Background()
	sink := auditbun.New(db, auditbun.Config{})
	for _, q := range sink.Statements() {
		q = strings.Replace(q, "response_status INTEGER", "response_status BIGINT", 1)
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err)
	}
	es := audittest.Entries(t, 9)
	require.NoError(t, sink.Write(ctx, es))
	require.NoError(t, sink.Write(ctx, es), "idempotent")
	for _, e := range es {
		got, err := sink.Get(ctx, e.ID.String())
		require.NoError(t, err)
		assert.Equal(t, e, got)
	}
	res, err := sink.Query(ctx, auditbun.Filter{})
	require.NoError(t, err)
	assert.Equal(t, len(es), res.Meta.Total)
}
