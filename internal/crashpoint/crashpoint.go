// Package crashpoint kills the process at named points of the engine, so
// that tests can crash a real run exactly where a race window is too
// narrow to hit with a timed kill -9: between a sink commit and the
// bookkeeping after it, say.
//
// It is driven by the environment variable MR_CRASHPOINT=NAME[:N]: the N-th
// time (default the first) the process reaches the point NAME, it sends
// itself SIGKILL. Without the variable, Hit costs one load of a bool.
package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Env is the environment variable that arms a crash point.
const Env = "MR_CRASHPOINT"

// The points the engine marks.
const (
	// MapSpilled: a map task wrote its shuffle files but not yet the
	// checkpoint that commits them.
	MapSpilled = "map-spilled"
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
	load  sync.Once
	armed bool
	point string
	left  atomic.Int64
)

// Hit kills the process if name is the armed point and this is its N-th hit.
func Hit(name string) {
	load.Do(parse)
	if !armed || name != point {
		return
	}
	if left.Add(-1) == 0 {
		self, _ := os.FindProcess(os.Getpid())
		self.Kill() // SIGKILL on Unix
		select {}   // the signal is on its way
	}
}

func parse() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	name, count, _ := strings.Cut(v, ":")
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		n = 1
	}
	armed, point = true, name
	left.Store(int64(n))
}
