package journal_test

import (
	"context"
	"fmt"
	"os"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/journal"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "journal-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	j, err := journal.Open(ctx, dir, journal.Config{Fsync: journal.FsyncBatch})
	if err != nil {
		panic(err)
	}
	// A request's entry: staged at once, durable once Sync returns.
	pos, err := j.Append(audit.Entry{ActionType: "WS:PING", Username: "ada", Outcome: audit.Success})
	if err != nil {
		panic(err)
	}
	if err := j.Sync(ctx, pos); err != nil {
		panic(err)
	}
	if err := j.Close(); err != nil { // e.g. the process stops before shipping
		panic(err)
	}

	// The next run replays it; the shipper stores it and acknowledges it.
	j, err = journal.Open(ctx, dir, journal.Config{})
	if err != nil {
		panic(err)
	}
	defer j.Close()
	entries, err := j.Peek(100)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(entries), entries[0].ActionType, entries[0].Username)
	if err := j.Ack(len(entries)); err != nil {
		panic(err)
	}
	fmt.Println(j.Len())
	// Output:
	// 1 WS:PING ada
	// 0
}
