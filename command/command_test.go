package command_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/command"
	"github.com/pkgroute/pkgroute/internal/errkind"
)

type ptrInput struct{ n int }

func (p *ptrInput) Validate() error {
	if p.n < 0 {
		return detailedErr{}
	}
	return nil
}

type detailedErr struct{}

func (detailedErr) Error() string     { return "n must not be negative" }
func (detailedErr) ErrorDetails() any { return []string{"/n"} }

type fakeTx struct {
	begun, committed, rolledBack int
}

type txKey struct{}

func (f *fakeTx) InTx(ctx context.Context, fn func(context.Context) error) (err error) {
	f.begun++
	defer func() {
		if r := recover(); r != nil {
			f.rolledBack++
			panic(r)
		}
		if err != nil {
			f.rolledBack++
		} else {
			f.committed++
		}
	}()
	return fn(context.WithValue(ctx, txKey{}, f))
}

func TestValidate(t *testing.T) {
	calls := 0
	inner := command.Func[*ptrInput, int](func(ctx context.Context, in *ptrInput) (int, error) {
		calls++
		return in.n * 2, nil
	})
	cmd := command.Validate(inner)

	tests := []struct {
		name    string
		in      int
		want    int
		wantErr bool
	}{
		{"valid", 2, 4, false},
		{"zero", 0, 0, false},
		{"invalid", -1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := calls
			got, err := cmd.Execute(context.Background(), &ptrInput{n: tt.in})
			if tt.wantErr {
				require.Error(t, err)
				assert.Equal(t, errkind.InvalidData, errkind.Of(err))
				assert.ErrorIs(t, err, command.ErrInvalidInput)
				assert.Equal(t, "n must not be negative", err.Error())
				assert.Equal(t, []string{"/n"}, errkind.DetailsOf(err))
				assert.Equal(t, before, calls, "inner must not run")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, before+1, calls)
		})
	}
}

func TestValidatePassesThroughNonValidators(t *testing.T) {
	cmd := command.Validate(command.Func[int, int](func(ctx context.Context, in int) (int, error) {
		return in + 1, nil
	}))
	got, err := cmd.Execute(context.Background(), 41)
	require.NoError(t, err)
	assert.Equal(t, 42, got)
}

func TestInTx(t *testing.T) {
	boom := errors.New("boom")
	tx := &fakeTx{}
	cmd := command.InTx[int, string](tx, command.Func[int, string](func(ctx context.Context, in int) (string, error) {
		require.Same(t, tx, ctx.Value(txKey{}), "the inner command sees the transaction")
		switch in {
		case 0:
			return "partial", boom
		case 1:
			panic("kaboom")
		}
		return "ok", nil
	}))

	out, err := cmd.Execute(context.Background(), 2)
	require.NoError(t, err)
	assert.Equal(t, "ok", out)
	assert.Equal(t, 1, tx.committed)

	out, err = cmd.Execute(context.Background(), 0)
	require.ErrorIs(t, err, boom)
	assert.Empty(t, out, "no output from a rolled back transaction")
	assert.Equal(t, 1, tx.rolledBack)

	assert.PanicsWithValue(t, "kaboom", func() { _, _ = cmd.Execute(context.Background(), 1) })
	assert.Equal(t, 2, tx.rolledBack)
	assert.Equal(t, 3, tx.begun)
	assert.Equal(t, 1, tx.committed)
}

func TestInTxCommitFailure(t *testing.T) {
	commitErr := errors.New("commit failed")
	txr := command.TransactorFunc(func(ctx context.Context, fn func(context.Context) error) error {
		if err := fn(ctx); err != nil {
			return err
		}
		return commitErr
	})
	cmd := command.InTx[int, int](txr, command.Func[int, int](func(ctx context.Context, in int) (int, error) {
		return in, nil
	}))
	out, err := cmd.Execute(context.Background(), 5)
	require.ErrorIs(t, err, commitErr)
	assert.Zero(t, out)
}

func TestObserve(t *testing.T) {
	type call struct {
		name string
		dur  time.Duration
		err  error
	}
	var calls []call
	obs := func(ctx context.Context, name string, dur time.Duration, err error) {
		calls = append(calls, call{name, dur, err})
	}
	boom := errors.New("boom")
	cmd := command.Observe("op", obs, command.Func[int, int](func(ctx context.Context, in int) (int, error) {
		switch in {
		case 0:
			return 0, boom
		case 1:
			panic("kaboom")
		}
		time.Sleep(time.Millisecond)
		return in, nil
	}))

	got, err := cmd.Execute(context.Background(), 5)
	require.NoError(t, err)
	assert.Equal(t, 5, got)
	_, err = cmd.Execute(context.Background(), 0)
	require.ErrorIs(t, err, boom)
	assert.PanicsWithValue(t, "kaboom", func() { _, _ = cmd.Execute(context.Background(), 1) })

	require.Len(t, calls, 3)
	assert.Equal(t, "op", calls[0].name)
	assert.GreaterOrEqual(t, calls[0].dur, time.Millisecond)
	assert.NoError(t, calls[0].err)
	assert.ErrorIs(t, calls[1].err, boom)
	require.Error(t, calls[2].err)
	assert.Contains(t, calls[2].err.Error(), "kaboom")
}

func TestObserveNilObserverIsIdentity(t *testing.T) {
	inner := command.Func[int, int](func(ctx context.Context, in int) (int, error) { return in, nil })
	cmd := command.Observe[int, int]("op", nil, inner)
	got, err := cmd.Execute(context.Background(), 3)
	require.NoError(t, err)
	assert.Equal(t, 3, got)
}

func TestDecoratorsRequireCommand(t *testing.T) {
	assert.Panics(t, func() { command.Validate[int, int](nil) })
	assert.Panics(t, func() { command.InTx[int, int](nil, nil) })
	assert.Panics(t, func() { command.Observe[int, int]("x", nil, nil) })
}
