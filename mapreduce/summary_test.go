package mapreduce_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// TestSummary_String pins the summary line, which users and their scripts
// read, in testdata/summary.golden.
func TestSummary_String(t *testing.T) {
	t.Parallel()
	var lines []string
	for _, s := range []mapreduce.Summary{
		{ // a clean run
			RunID: "daily_rollup-38e27d06", Total: 1_000_000, Processed: 1_000_000, Failed: 109, Read: 1_000_000,
			Elapsed: 9981 * time.Millisecond, BytesSpilled: 9_646_899, Partitions: 16, Buckets: 16, Groups: 698_968,
		},
		{ // resumed after a crash
			RunID: "daily_rollup-38e27d06", Total: 1_000_000, Processed: 1_000_000, Failed: 109, Read: 400_000, Resumed: 600_000,
			Elapsed: 4 * time.Second, BytesSpilled: 9_646_899, PartitionsResumed: 9, Partitions: 16, BucketsResumed: 0, Buckets: 16, Groups: 698_968,
		},
		{ // an empty table
			RunID: "sum_test-00000000", Partitions: 16, Buckets: 16,
		},
		{ // resumed after the map phase: read nothing, reduced
			RunID: "daily_rollup-38e27d06", Total: 1_000_000, Processed: 1_000_000, Failed: 109, Resumed: 1_000_000,
			Elapsed: 2 * time.Second, BytesSpilled: 9_646_899, PartitionsResumed: 16, Partitions: 16, BucketsResumed: 5, Buckets: 16, Groups: 480_000,
		},
		{ // above the failure threshold
			RunID: "sum_test-0badc0de", Total: 2_000, Processed: 2_000, Failed: 400, Read: 2_000,
			Elapsed: 1500 * time.Microsecond, BytesSpilled: 512, Partitions: 1, Buckets: 1, Groups: 10,
		},
		{ // stopped early by the failure rate
			RunID: "sum_test-0badc0de", Total: 50_000, Processed: 1_000, Failed: 1_000, Read: 1_000,
			Elapsed: 250 * time.Millisecond, Partitions: 4, Buckets: 2, MapStopped: true,
		},
	} {
		lines = append(lines, s.String())
	}
	runtest.CheckGolden(t, "summary.golden", strings.Join(lines, "\n")+"\n")
}
