// Package command holds business operations that know no transport.
//
// A Command[I, O] turns an input into an output: the same value serves an
// HTTP handler, a WebSocket package handler and a test. Func adapts a plain
// function, and a few generic decorators wrap a command without changing
// its type:
//
//   - InTx runs it inside a transaction supplied by a Transactor (the
//     repository package provides one over bun);
//   - Validate calls Validate() error on the input first and reports a
//     failure as invalid data;
//   - Observe reports the name, duration and error of every call to a hook,
//     for audit trails and metrics.
//
// Decorators compose by nesting; the outermost runs first:
//
//	create := command.Observe("create_author", metrics,
//		command.Validate(
//			command.InTx(txr, createAuthor)))
package command
