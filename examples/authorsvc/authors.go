package main

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/pkgroute/pkgroute/command"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/router"
	"github.com/uptrace/bun"
)

// Author is a row of the authors table and the wire form of an author.
type Author struct {
	bun.BaseModel `bun:"table:authors"`

	ID        int64     `bun:"id,pk,autoincrement" json:"id"`
	Name      string    `bun:"name,notnull" json:"name"`
	CreatedAt time.Time `bun:"created_at,notnull,default:current_timestamp" json:"created_at"`
	UpdatedAt time.Time `bun:"updated_at,notnull,default:current_timestamp" json:"updated_at"`
}

// AuthorRepository is the typed repository of authors.
type AuthorRepository struct {
	*repository.Repository[Author]
}

// GetByName returns the author named name, or repository.ErrNotFound.
func (r AuthorRepository) GetByName(ctx context.Context, name string) (*Author, error) {
	return r.First(ctx, repository.Eq("name", name))
}

// maxNameLen is the longest author name, in characters.
const maxNameLen = 200

// fieldError is an invalid_data error with JSON-pointer details.
type fieldError struct {
	details []router.Detail
}

func (e *fieldError) Error() string           { return "invalid data" }
func (e *fieldError) ErrorKind() errkind.Kind { return errkind.InvalidData }
func (e *fieldError) ErrorDetails() any       { return e.details }

func invalidField(path, msg string) error {
	return &fieldError{details: []router.Detail{{Path: path, Msg: msg}}}
}

func checkName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case n < 1:
		return invalidField("/name", "minLength: got 0, want 1")
	case n > maxNameLen:
		return invalidField("/name", fmt.Sprintf("maxLength: got %d, want %d", n, maxNameLen))
	}
	return nil
}

func checkID(id int64) error {
	if id < 1 {
		return invalidField("/id", "minimum: want >= 1")
	}
	return nil
}

// GetAuthorsInput selects authors: by search term (a case-insensitive
// substring of the name, which wins over the other fields), else by id
// and/or exact name; nothing selects every author.
type GetAuthorsInput struct {
	ID         *int64  `json:"id,omitempty"`
	Name       *string `json:"name,omitempty"`
	SearchTerm *string `json:"search_term,omitempty"`
}

// AuthorFilters are the filters of the paginated listing.
type AuthorFilters struct {
	ID   *int64  `json:"id,omitempty"`
	Name *string `json:"name,omitempty"`
}

// GetPaginatedAuthorsInput asks for one page of authors.
type GetPaginatedAuthorsInput struct {
	Filters *AuthorFilters `json:"filters,omitempty"`
	repository.Page
}

// AuthorPage is one page of authors: its items go in the reply's data and
// its metadata in meta.
type AuthorPage struct {
	repository.Result[Author]
}

// PageItems implements router.Paged.
func (p AuthorPage) PageItems() any { return p.Items }

// PageMeta implements router.Paged.
func (p AuthorPage) PageMeta() any { return p.Meta }

// CreateAuthorInput names a new author.
type CreateAuthorInput struct {
	Name string `json:"name"`
}

// Validate checks the name.
func (in CreateAuthorInput) Validate() error { return checkName(in.Name) }

// UpdateAuthorInput renames an author.
type UpdateAuthorInput struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Validate checks the id and the name.
func (in UpdateAuthorInput) Validate() error {
	return errors.Join(checkID(in.ID), checkName(in.Name))
}

// DeleteAuthorInput names the author to delete.
type DeleteAuthorInput struct {
	ID int64 `json:"id"`
}

// Validate checks the id.
func (in DeleteAuthorInput) Validate() error { return checkID(in.ID) }

// Empty is the output of commands that return nothing; it encodes as {}.
type Empty struct{}

// AuthorCreatedEvent is the data of the AUTHOR_CREATED push.
type AuthorCreatedEvent struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Notifier announces created authors (the WebSocket hub pushes them).
type Notifier interface {
	AuthorCreated(ctx context.Context, a AuthorCreatedEvent)
}

// authorCommands are the business operations on authors. Each serves both
// the WebSocket packages and the HTTP routes.
type authorCommands struct {
	get       command.Command[GetAuthorsInput, []Author]
	paginated command.Command[GetPaginatedAuthorsInput, AuthorPage]
	create    command.Command[CreateAuthorInput, Author]
	update    command.Command[UpdateAuthorInput, Author]
	delete    command.Command[DeleteAuthorInput, Empty]
}

func newAuthorCommands(repo AuthorRepository, txr command.Transactor, notify Notifier, now func() time.Time) authorCommands {
	return authorCommands{
		get: command.Func[GetAuthorsInput, []Author](func(ctx context.Context, in GetAuthorsInput) ([]Author, error) {
			var filters []repository.Filter
			switch {
			case in.SearchTerm != nil:
				filters = append(filters, repository.Contains("name", *in.SearchTerm))
			default:
				if in.ID != nil {
					filters = append(filters, repository.Eq("id", *in.ID))
				}
				if in.Name != nil {
					filters = append(filters, repository.Eq("name", *in.Name))
				}
			}
			return repo.List(ctx, filters...)
		}),
		paginated: command.Func[GetPaginatedAuthorsInput, AuthorPage](func(ctx context.Context, in GetPaginatedAuthorsInput) (AuthorPage, error) {
			var filters []repository.Filter
			if f := in.Filters; f != nil {
				if f.ID != nil {
					filters = append(filters, repository.Eq("id", *f.ID))
				}
				if f.Name != nil {
					filters = append(filters, repository.Eq("name", *f.Name))
				}
			}
			res, err := repo.Paginate(ctx, in.Page, filters...)
			return AuthorPage{res}, err
		}),
		create: command.Validate(command.Func[CreateAuthorInput, Author](func(ctx context.Context, in CreateAuthorInput) (Author, error) {
			t := now().UTC()
			a := Author{Name: in.Name, CreatedAt: t, UpdatedAt: t}
			if err := repo.Create(ctx, &a); err != nil {
				if errors.Is(err, repository.ErrConflict) {
					return Author{}, conflict("an author named %q already exists", in.Name)
				}
				return Author{}, err
			}
			notify.AuthorCreated(ctx, AuthorCreatedEvent{ID: a.ID, Name: a.Name})
			return a, nil
		})),
		update: command.Validate(command.InTx(txr, command.Func[UpdateAuthorInput, Author](func(ctx context.Context, in UpdateAuthorInput) (Author, error) {
			a, err := repo.Get(ctx, in.ID)
			if err != nil {
				if errors.Is(err, repository.ErrNotFound) {
					return Author{}, notFound(in.ID)
				}
				return Author{}, err
			}
			a.Name, a.UpdatedAt = in.Name, now().UTC()
			if err := repo.Update(ctx, a); err != nil {
				switch {
				case errors.Is(err, repository.ErrConflict):
					return Author{}, conflict("an author named %q already exists", in.Name)
				case errors.Is(err, repository.ErrNotFound):
					return Author{}, notFound(in.ID)
				}
				return Author{}, err
			}
			return *a, nil
		}))),
		delete: command.Validate(command.Func[DeleteAuthorInput, Empty](func(ctx context.Context, in DeleteAuthorInput) (Empty, error) {
			if err := repo.Delete(ctx, in.ID); err != nil {
				if errors.Is(err, repository.ErrNotFound) {
					return Empty{}, notFound(in.ID)
				}
				return Empty{}, err
			}
			return Empty{}, nil
		})),
	}
}

func conflict(format string, args ...any) error {
	return &router.Error{Status: router.StatusInvalidData, Code: router.CodeConflict, Msg: fmt.Sprintf(format, args...), Err: router.ErrConflict}
}

func notFound(id int64) error {
	return &router.Error{Status: router.StatusError, Code: router.CodeNotFound, Msg: fmt.Sprintf("author %d not found", id), Err: router.ErrNotFound}
}
