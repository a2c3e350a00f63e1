package journal_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/audit/journal"
)

// crashChildEnv names the journal directory of the child process of
// TestCrashKeepsSyncedEntries.
const crashChildEnv = "PKGROUTE_JOURNAL_CRASH_DIR"

const crashWorkers = 4

// crashEntry is the k-th entry of worker w in the crash test.
func crashEntry(w, k int) audit.Entry {
	e := entry(k)
	e.Username = strconv.Itoa(w)
	e.Seq = int64(k)
	e.RequestData = json.RawMessage(fmt.Sprintf(`{"w":%d,"k":%d,"pad":"%s"}`, w, k, strings.Repeat("x", k%200)))
	return e
}

// crashChild appends and syncs from several goroutines with fsync per
// batch, printing "pos w k" for each synced entry, until it is killed.
func crashChild(dir string) {
	j, err := journal.Open(context.Background(), dir, journal.Config{Fsync: journal.FsyncBatch, SegmentBytes: 256 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWorkers {
		wg.Go(func() {
			for k := 0; ; k++ {
				pos, err := j.Append(crashEntry(w, k))
				if err == nil {
					err = j.Sync(context.Background(), pos)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d %d\n", pos, w, k)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// TestCrashKeepsSyncedEntries kills a process that appends with fsync per
// batch, mid-stream, and checks that every entry it reported as synced is
// in the reopened journal, in order, intact.
func TestCrashKeepsSyncedEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	type synced struct{ w, k int }
	reported := map[uint64]synced{}
	sc := bufio.NewScanner(stdout)
	for len(reported) < 3000 && sc.Scan() {
		var pos uint64
		var s synced
		_, err := fmt.Sscan(sc.Text(), &pos, &s.w, &s.k)
		require.NoError(t, err, sc.Text())
		reported[pos] = s
	}
	require.NoError(t, sc.Err())
	require.Len(t, reported, 3000, "the child stopped early")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	err = cmd.Wait()
	killed = true
	require.Error(t, err) // killed
	// Lines printed after the count was reached: synced as well.
	for sc.Scan() {
		var pos uint64
		var s synced
		if _, err := fmt.Sscan(sc.Text(), &pos, &s.w, &s.k); err == nil {
			reported[pos] = s
		}
	}

	j := open(t, dir, journal.Config{})
	es := peekAll(t, j)
	t.Logf("synced %d, journal holds %d, torn bytes %d", len(reported), len(es), j.Stats().TornBytes)
	for pos, s := range reported {
		require.LessOrEqual(t, pos, uint64(len(es)), "synced position %d is missing", pos)
		require.Equal(t, crashEntry(s.w, s.k), es[pos-1], "position %d", pos)
	}
	// Every entry held is intact and each worker's entries are in order.
	next := make([]int, crashWorkers)
	for i, e := range es {
		w, err := strconv.Atoi(e.Username)
		require.NoError(t, err)
		require.Equal(t, crashEntry(w, next[w]), e, "position %d", i+1)
		next[w]++
	}
}
