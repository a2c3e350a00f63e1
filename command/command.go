package command

import (
	"context"
	"fmt"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
)

// Command is one business operation from input I to output O.
type Command[I, O any] interface {
	Execute(ctx context.Context, in I) (O, error)
}

// Func adapts an ordinary function to a Command.
type Func[I, O any] func(ctx context.Context, in I) (O, error)

// Execute calls f(ctx, in).
func (f Func[I, O]) Execute(ctx context.Context, in I) (O, error) { return f(ctx, in) }

// Transactor runs fn inside a transaction: the transaction commits when fn
// returns nil and rolls back when fn returns an error or panics. The context
// passed to fn carries the transaction, so that the stores used by fn take
// part in it.
type Transactor interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// TransactorFunc adapts a function to a Transactor.
type TransactorFunc func(ctx context.Context, fn func(ctx context.Context) error) error

// InTx calls f(ctx, fn).
func (f TransactorFunc) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return f(ctx, fn)
}

// InTx returns a command that runs next inside a transaction of t. The
// output of next is returned only when the transaction committed.
func InTx[I, O any](t Transactor, next Command[I, O]) Command[I, O] {
	if t == nil || next == nil {
		panic("command: InTx needs a Transactor and a Command")
	}
	return Func[I, O](func(ctx context.Context, in I) (O, error) {
		var out O
		err := t.InTx(ctx, func(ctx context.Context) error {
			var err error
			out, err = next.Execute(ctx, in)
			return err
		})
		if err != nil {
			var zero O
			return zero, err
		}
		return out, nil
	})
}

// Validator is implemented by inputs that can check themselves.
type Validator interface {
	Validate() error
}

// ErrInvalidInput is the error of kind invalid_data that Validate wraps
// around the error returned by an input's Validate method.
var ErrInvalidInput = errkind.New(errkind.InvalidData, "invalid input")

// Validate returns a command that calls in.Validate() when I implements
// Validator and runs next only when it returns nil. A validation failure is
// returned as ErrInvalidInput joined with the input's error, so its kind is
// invalid_data and its message and details are those of the input's error.
// Inputs that do not implement Validator pass through.
func Validate[I, O any](next Command[I, O]) Command[I, O] {
	if next == nil {
		panic("command: Validate needs a Command")
	}
	return Func[I, O](func(ctx context.Context, in I) (O, error) {
		if v, ok := any(in).(Validator); ok {
			if err := v.Validate(); err != nil {
				var zero O
				return zero, &validationError{err: err}
			}
		}
		return next.Execute(ctx, in)
	})
}

// validationError reports err with the kind of ErrInvalidInput.
type validationError struct{ err error }

func (e *validationError) Error() string   { return e.err.Error() }
func (e *validationError) Unwrap() []error { return []error{ErrInvalidInput, e.err} }

// Observer is told of every completed call of an observed command: its name,
// how long it took and the error it returned (nil on success).
type Observer func(ctx context.Context, name string, dur time.Duration, err error)

// Observe returns a command that runs next and then calls obs. A panic in
// next is reported to obs as an error and then re-raised. A nil obs returns
// next unchanged.
func Observe[I, O any](name string, obs Observer, next Command[I, O]) Command[I, O] {
	if next == nil {
		panic("command: Observe needs a Command")
	}
	if obs == nil {
		return next
	}
	return Func[I, O](func(ctx context.Context, in I) (out O, err error) {
		start := time.Now()
		done := false
		defer func() {
			if !done {
				r := recover()
				obs(ctx, name, time.Since(start), fmt.Errorf("command %s panicked: %v", name, r))
				panic(r)
			}
		}()
		out, err = next.Execute(ctx, in)
		done = true
		obs(ctx, name, time.Since(start), err)
		return out, err
	})
}
