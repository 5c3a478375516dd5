// Package crashpoint stops a run at named points of the engine, so that
// tests can crash it exactly where a race window is too narrow to hit with
// a timed kill -9: between a sink commit and the bookkeeping after it, say.
//
// Two ways arm a point:
//
//   - The environment variable MR_CRASHPOINT=NAME[:N[:stop]], read when
//     the process starts: the N-th time (default the first) the process
//     reaches the point NAME, it sends itself SIGKILL. This is a real
//     crash; the command line's tests run mr in a subprocess with it. With
//     :stop it sends itself SIGSTOP instead, and goes on from the point
//     when the test sends SIGCONT: a process paused (a long GC pause, a
//     frozen VM) past its task's rescue, which wakes up at the worst time.
//   - WithHook, for tests in one process: Hit calls the hook of its context
//     at every point, and the hook may panic to stop the run there. The
//     engine recovers a task's panic into the task's error, so the run ends
//     through its error path: the deferred clean-ups run (a kill -9 runs
//     none), but nothing that comes after the point in the code does, so
//     the run state and the sink are what a crash at the point leaves.
//     Hooks belong to a context, so runs in parallel tests do not see each
//     other's.
//
// Without either, Hit costs one atomic load.
package crashpoint

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// Env is the environment variable that arms a crash point.
const Env = "MR_CRASHPOINT"

// The points the engine marks.
const (
	// MapSpilled: a map task wrote its shuffle files but not yet the
	// checkpoint that commits them.
	MapSpilled = "map-spilled"
	// ChunkIntent: a map-only job's task saved the checkpoint that names
	// a chunk as pending, and has not yet applied the chunk to the sink.
	ChunkIntent = "chunk-intent"
	// ChunkApplied: the sink committed a map-only chunk, and no checkpoint
	// folds it in yet.
	ChunkApplied = "chunk-applied"
	// BucketStarted: a reduce task is about to read its bucket's files
	// and apply them; nothing of the bucket is committed.
	BucketStarted = "bucket-started"
	// BucketApplied: the sink committed a bucket, the local done marker is
	// not yet written.
	BucketApplied = "bucket-applied"
	// BeforeSwap: every bucket is applied to the staging table, the swap
	// that replaces the output table with it has not begun.
	BeforeSwap = "before-swap"
	// SwapRenamed: inside the sink's swap transaction, the old table is
	// dropped and the staging table renamed, not yet committed.
	SwapRenamed = "swap-renamed"
	// Swapped: the swap committed, the engine has not yet returned.
	Swapped = "swapped"
)

var (
	// active is set once the environment arms a point or a hook is
	// installed; until then Hit looks no further.
	active atomic.Bool
	point  string       // armed by Env, or ""
	stop   bool         // the point stops the process instead of killing it
	left   atomic.Int64 // hits of point until the kill
)

func init() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	name, count, _ := strings.Cut(v, ":")
	count, action, _ := strings.Cut(count, ":")
	stop = action == "stop"
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		n = 1
	}
	point = name
	left.Store(int64(n))
	active.Store(true)
}

type hookKey struct{}

// WithHook returns a context whose Hit calls hook with the point's name,
// in the goroutine that reached it. Map and reduce tasks run in several
// goroutines at once, so hook must be safe for concurrent use.
func WithHook(ctx context.Context, hook func(name string)) context.Context {
	active.Store(true)
	return context.WithValue(ctx, hookKey{}, hook)
}

// Hit marks the point name: it calls ctx's hook, if any, then kills the
// process if name is the point Env armed and this is its N-th hit.
func Hit(ctx context.Context, name string) {
	if !active.Load() {
		return
	}
	if hook, ok := ctx.Value(hookKey{}).(func(string)); ok {
		hook(name)
	}
	if name == point && left.Add(-1) == 0 {
		if stop {
			pause()
			return
		}
		self, _ := os.FindProcess(os.Getpid())
		self.Kill() // SIGKILL on Unix
		select {}   // the signal is on its way
	}
}
