package repository_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/pkgroute/pkgroute/command"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/pkgroute/pkgroute/router"
)

// Author is a row of the authors table.
type Author struct {
	bun.BaseModel `bun:"table:authors,alias:a"`

	ID   int64  `bun:"id,pk,autoincrement" json:"id"`
	Name string `bun:"name" json:"name"`
	Bio  string `bun:"bio" json:"bio"`
}

// Book is a row of the books table.
type Book struct {
	bun.BaseModel `bun:"table:books,alias:b"`

	ID       int64  `bun:"id,pk"`
	AuthorID int64  `bun:"author_id"`
	Title    string `bun:"title"`
}

// createTables creates the example's tables (an application keeps its
// schema in migration files: see dbmigrate).
func createTables(ctx context.Context, db *bun.DB) error {
	for _, q := range []string{
		`CREATE TABLE authors (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, bio TEXT NOT NULL DEFAULT '')`,
		`CREATE TABLE books (id INTEGER NOT NULL PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES authors (id), title TEXT NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// AuthorRepository is a typed repository: the common operations come from
// the embedded Repository, the queries of its own are added as methods.
type AuthorRepository struct {
	*repository.Repository[Author]
}

// GetByName returns the author with exactly this name, or
// repository.ErrNotFound.
func (r AuthorRepository) GetByName(ctx context.Context, name string) (*Author, error) {
	return r.First(ctx, repository.Eq("name", name))
}

// Rename is a hand-written query: DB gives the handle (the context's
// transaction, if any) and MapError the repository's error mapping.
func (r AuthorRepository) Rename(ctx context.Context, from, to string) error {
	res, err := r.DB(ctx).NewUpdate().Model((*Author)(nil)).
		Set("name = ?", to).Where("name = ?", from).Exec(ctx)
	if err != nil {
		return repository.MapError("rename", r.Table(), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return repository.ErrNotFound
	}
	return nil
}

func Example() {
	ctx := context.Background()
	db, err := dbopen.Open(ctx, "sqlite::memory:", dbopen.Config{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if err := createTables(ctx, db); err != nil {
		panic(err)
	}

	base, err := repository.New[Author](db, repository.Config{})
	if err != nil {
		panic(err)
	}
	authors := AuthorRepository{base}

	for _, name := range []string{"Ada", "Grace", "Barbara"} {
		if err := authors.Create(ctx, &Author{Name: name}); err != nil {
			panic(err)
		}
	}
	ada, _ := authors.GetByName(ctx, "Ada")
	fmt.Println(ada.ID, ada.Name)

	err = authors.Create(ctx, &Author{Name: "Grace"})
	fmt.Println(errors.Is(err, repository.ErrConflict), router.ToError(err).Code) // the wire code

	_, err = authors.GetByName(ctx, "Linus")
	fmt.Println(err, router.ToError(err).Code) // the wire code

	fmt.Println(authors.Rename(ctx, "Barbara", "Barbara Liskov"))

	page, _ := authors.Paginate(ctx, repository.Offset(1, 2), repository.Contains("name", "A"))
	out, _ := json.Marshal(page.Meta)
	fmt.Println(len(page.Items), string(out))
	// Output:
	// 1 Ada
	// true conflict
	// first authors: not found not_found
	// <nil>
	// 2 {"page":1,"per_page":2,"total":3,"pages":2,"next_cursor":null,"has_more":true}
}

// CreateAuthor is the input of a command.
type CreateAuthor struct{ Name string }

// Validate implements command.Validator.
func (in CreateAuthor) Validate() error {
	if strings.TrimSpace(in.Name) == "" {
		return errors.New("name is required")
	}
	return nil
}

func ExampleTransactor() {
	ctx := context.Background()
	db, err := dbopen.Open(ctx, "sqlite::memory:", dbopen.Config{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if err := createTables(ctx, db); err != nil {
		panic(err)
	}
	authors, err := repository.New[Author](db, repository.Config{})
	if err != nil {
		panic(err)
	}

	// Creates an author and a first book in one transaction.
	create := command.Validate(command.InTx(repository.NewTransactor(db, nil),
		command.Func[CreateAuthor, *Author](func(ctx context.Context, in CreateAuthor) (*Author, error) {
			a := &Author{Name: in.Name}
			if err := authors.Create(ctx, a); err != nil {
				return nil, err
			}
			// Hand-written queries join the transaction through IDB.
			_, err := repository.IDB(ctx, bun.IDB(db)).NewInsert().
				Model(&Book{ID: a.ID, AuthorID: a.ID, Title: "First steps"}).Exec(ctx)
			return a, err
		})))

	a, err := create.Execute(ctx, CreateAuthor{Name: "Ada"})
	fmt.Println(a.Name, err)
	_, err = create.Execute(ctx, CreateAuthor{Name: "Ada"})
	fmt.Println(err, router.ToError(err).Code) // the wire code
	_, err = create.Execute(ctx, CreateAuthor{})
	fmt.Println(err, router.ToError(err).Code) // the wire code
	n, _ := authors.Count(ctx)
	fmt.Println(n)
	// Output:
	// Ada <nil>
	// create authors: already exists conflict
	// name is required invalid_data
	// 1
}
