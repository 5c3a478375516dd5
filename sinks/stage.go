package sinks

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// The commit table records two steps of a replacing run beside its
// buckets, under the run's commit key and a bucket number no bucket has,
// each in the transaction of the step itself; Committed never returns
// them.
const (
	// swapBucket: the staging table of the commit replaced the output
	// table.
	swapBucket = -1
	// stageBucket: the staging table of the commit was created. A staging
	// table without this record is an earlier plan's, and is built anew.
	stageBucket = -2
)

// stageSuffix follows the output table's name in its staging table's.
const stageSuffix = "_mr_next_"

// stageName is the name of the staging table in which run builds table of
// schema: the table's name, stageSuffix and 8 hex digits of a hash of the
// qualified name and the run, e.g. "daily_rollup_mr_next_5e0c1a7f". The
// name is cut to fit maxIdentifier bytes, shortening the table's part (at
// a character boundary), and the hash keeps two long names that share a
// prefix apart. It derives from the run, not its commit, so that a
// resumed run finds its table and a --fresh plan of the run replaces the
// earlier plan's instead of leaving it behind.
func stageName(schema, table, run string) string {
	sum := sha256.Sum256([]byte(schema + "\x00" + table + "\x00" + run))
	suffix := stageSuffix + hex.EncodeToString(sum[:4])
	prefix := table
	for len(prefix)+len(suffix) > maxIdentifier {
		_, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
	}
	return prefix + suffix
}
