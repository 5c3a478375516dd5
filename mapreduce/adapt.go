package mapreduce

import "math"

// A map task's combine table pays a map access for every pair Map emits,
// and saves the shuffle and the reduce a record for every pair whose key
// it holds already. Where keys rarely repeat within a partition (a group
// per event, order or session), it saves almost nothing, and the accesses
// to a table of hundreds of thousands of keys miss the cache: with a
// group per event, 10M rows took 1.3 to 1.5 times as long combined
// (BenchmarkMapCombine/shape=distinct). So each map task looks at a
// sample of its pairs, predicts how much combining its whole range would
// save, and, if little, streams its pairs to the shuffle uncombined; the
// reduce combines them as it combines any spill. Like the choice of
// partitions, it changes how much is spilled, never what the sink gets.

// streamSample is the number of pairs a task of about rows rows combines
// before it decides: a quarter of the task, between 4,096 and 65,536
// pairs, so that the prediction has repeats to go on, and most of the
// task is left to gain from it.
func streamSample(rows int64) int64 {
	return min(max(rows/4, 4096), 65_536)
}

// streamThreshold is the share of distinct keys among a task's pairs
// above which combining does not pay: it would spare at most a fifth of
// the records, for a map access per pair.
const streamThreshold = 0.8

// streamWorthIt reports whether a task whose sample of pairs held keys
// distinct keys should stream instead of combining the expected pairs of
// its whole range. It takes keys to be drawn uniformly from some number
// of groups G, estimates G from the sample (see distinctShare), and
// predicts the share of distinct keys among the expected pairs from it.
// Keys that cluster by cursor (a day, in rows of increasing time) repeat
// within the sample, and keep the task combining.
func streamWorthIt(keys, pairs int, expected int64) bool {
	if pairs == 0 || keys == 0 {
		return false
	}
	share := float64(keys) / float64(pairs)
	if share >= 1 {
		return true // no repeat at all: G is beyond what the sample can tell
	}
	// Solve distinctShare(x) = share for x = pairs/G, by bisection: it
	// falls from 1 (x → 0) towards 0 as x grows.
	lo, hi := 0.0, 64.0
	for range 60 {
		if mid := (lo + hi) / 2; distinctShare(mid) > share {
			lo = mid
		} else {
			hi = mid
		}
	}
	x := (lo + hi) / 2 * float64(max(expected, int64(pairs))) / float64(pairs)
	return distinctShare(x) > streamThreshold
}

// distinctShare is the expected share of distinct keys among n pairs
// drawn uniformly from G groups, for x = n/G: G(1-e^(-n/G))/n.
func distinctShare(x float64) float64 {
	if x < 1e-9 {
		return 1
	}
	return -math.Expm1(-x) / x
}
