package router_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/pkgroute/pkgroute/router"
)

type pagedNote struct {
	ID   int64  `bun:"id,pk,autoincrement" json:"id"`
	Text string `bun:"text,notnull" json:"text"`
}

// A repository.Result returned by a paginated package is the reply's data
// (the items) and meta (its Meta), as docs/protocol.md section 1.4 says.
func TestPaginateResultIsAPage(t *testing.T) {
	ctx := context.Background()
	db, err := dbopen.Open(ctx, "sqlite::memory:", dbopen.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.NewCreateTable().Model((*pagedNote)(nil)).Exec(ctx)
	require.NoError(t, err)
	notes, err := repository.New[pagedNote](db, repository.Config{})
	require.NoError(t, err)
	for _, text := range []string{"a", "b", "c"} {
		require.NoError(t, notes.Create(ctx, &pagedNote{Text: text}))
	}

	r := router.New[int32](router.Config{})
	router.Handle(r, 1, func(ctx context.Context, p repository.Page) (repository.Result[pagedNote], error) {
		return notes.Paginate(ctx, p)
	}, router.Paginated(), router.Authenticated())

	reqID := uuid.New()
	raw := r.Dispatch(ctx, &auth.Principal{ID: "u"},
		[]byte(`{"pkg_id":1,"req_id":"`+reqID.String()+`","data":{"page":1,"per_page":2}}`))
	assert.JSONEq(t, `{"pkg_id":1,"req_id":"`+reqID.String()+`","status_code":0,`+
		`"meta":{"page":1,"per_page":2,"total":3,"pages":2,"next_cursor":null,"has_more":true},`+
		`"data":[{"id":1,"text":"a"},{"id":2,"text":"b"}]}`, string(raw))

	// router.Metadata and repository.Meta are one type.
	var meta router.Metadata = repository.Meta{Page: 1}
	_, err = json.Marshal(meta)
	require.NoError(t, err)
}

// An empty page is "data":[], never null.
func TestEmptyResultIsAnEmptyList(t *testing.T) {
	r := router.New[int32](router.Config{})
	router.Handle(r, 1, func(context.Context, struct{}) (repository.Result[pagedNote], error) {
		return repository.Result[pagedNote]{Meta: repository.Meta{Page: 1, PerPage: 20}}, nil
	}, router.Paginated(), router.Authenticated())
	raw := r.Dispatch(context.Background(), &auth.Principal{ID: "u"}, []byte(`{"pkg_id":1,"req_id":"`+uuid.NewString()+`","data":{}}`))
	var env struct {
		Meta json.RawMessage `json:"meta"`
		Data json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &env))
	assert.Equal(t, `[]`, string(env.Data))
	assert.JSONEq(t, `{"page":1,"per_page":20,"total":0,"pages":0,"next_cursor":null,"has_more":false}`, string(env.Meta))
}
