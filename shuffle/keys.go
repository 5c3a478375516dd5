package shuffle

import "fmt"

// Shuffle files are named by keys relative to their run's prefix in the
// blob storage. Every name holds the attempt that wrote it, unique per
// process, so an attempt never overwrites a file that another one
// committed, and the files of attempts that died before their commit are
// told apart from committed ones by the manifests alone.

// MapKey names the file of bucket written by the seq-th commit of
// partition part: shuffle/b<bucket>/p<part>-<seq>-<attempt>.arrow.
func MapKey(bucket, part, seq int, attempt string) string {
	return fmt.Sprintf("%sb%04d/p%04d-%06d-%s.arrow", MapPrefix, bucket, part, seq, attempt)
}

// MapPrefix is the prefix of every MapKey.
const MapPrefix = "shuffle/"

// ReplayKey names the file of bucket written by replay generation gen of a
// run's dead letters: replay/g<gen>-b<bucket>-<attempt>.arrow.
func ReplayKey(gen, bucket int, attempt string) string {
	return fmt.Sprintf("%sg%04d-b%04d-%s.arrow", ReplayPrefix, gen, bucket, attempt)
}

// ReplayPrefix is the prefix of every ReplayKey.
const ReplayPrefix = "replay/"

// RegroupKey names the n-th file of sub-part sub of a bucket that a
// reducer re-partitions at level: reduce/b<bucket>/l<level>-s<sub>-<n>-<attempt>.arrow.
// These files live only while the bucket is reduced.
func RegroupKey(bucket, level, sub, n int, attempt string) string {
	return RegroupPrefix(bucket) + fmt.Sprintf("l%d-s%02d-%06d-%s.arrow", level, sub, n, attempt)
}

// RegroupPrefix is the prefix of the RegroupKeys of bucket.
func RegroupPrefix(bucket int) string { return fmt.Sprintf("reduce/b%04d/", bucket) }
