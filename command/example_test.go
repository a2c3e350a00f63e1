package command_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/command"
	"github.com/pkgroute/pkgroute/router"
)

type CreateAuthor struct{ Name string }

func (in CreateAuthor) Validate() error {
	if strings.TrimSpace(in.Name) == "" {
		return errors.New("name is required")
	}
	return nil
}

type Author struct {
	ID   int
	Name string
}

func ExampleFunc() {
	greet := command.Func[string, string](func(ctx context.Context, name string) (string, error) {
		return "hello " + name, nil
	})
	out, err := greet.Execute(context.Background(), "Ada")
	fmt.Println(out, err)
	// Output: hello Ada <nil>
}

func ExampleValidate() {
	create := command.Validate(command.Func[CreateAuthor, Author](
		func(ctx context.Context, in CreateAuthor) (Author, error) {
			return Author{ID: 1, Name: in.Name}, nil
		}))

	out, err := create.Execute(context.Background(), CreateAuthor{Name: "Ada"})
	fmt.Println(out, err)

	_, err = create.Execute(context.Background(), CreateAuthor{Name: " "})
	fmt.Println(err, router.ToError(err).Code, errors.Is(err, command.ErrInvalidInput))
	// Output:
	// {1 Ada} <nil>
	// name is required invalid_data true
}

func ExampleInTx() {
	// A Transactor normally comes from the repository package; this one
	// only prints what a real transaction would do.
	txr := command.TransactorFunc(func(ctx context.Context, fn func(context.Context) error) error {
		fmt.Println("begin")
		if err := fn(ctx); err != nil {
			fmt.Println("rollback")
			return err
		}
		fmt.Println("commit")
		return nil
	})
	create := command.InTx(txr, command.Func[CreateAuthor, Author](
		func(ctx context.Context, in CreateAuthor) (Author, error) {
			if in.Name == "taken" {
				return Author{}, errors.New("duplicate name")
			}
			return Author{ID: 7, Name: in.Name}, nil
		}))

	out, err := create.Execute(context.Background(), CreateAuthor{Name: "Ada"})
	fmt.Println(out, err)
	out, err = create.Execute(context.Background(), CreateAuthor{Name: "taken"})
	fmt.Println(out, err)
	// Output:
	// begin
	// commit
	// {7 Ada} <nil>
	// begin
	// rollback
	// {0 } duplicate name
}

func ExampleObserve() {
	obs := func(ctx context.Context, name string, dur time.Duration, err error) {
		fmt.Printf("%s took >=0s: %t, err: %v\n", name, dur >= 0, err)
	}
	get := command.Observe("get_author", obs, command.Func[int, Author](
		func(ctx context.Context, id int) (Author, error) {
			if id != 1 {
				return Author{}, errors.New("not found")
			}
			return Author{ID: 1, Name: "Ada"}, nil
		}))

	_, _ = get.Execute(context.Background(), 1)
	_, _ = get.Execute(context.Background(), 2)
	// Output:
	// get_author took >=0s: true, err: <nil>
	// get_author took >=0s: true, err: not found
}
