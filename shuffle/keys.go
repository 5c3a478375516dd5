package shuffle

import "fmt"

// Shuffle files are named by keys in the blob storage that begin with
// their run's id. Every name holds the attempt that wrote it, unique per
// process, so an attempt never overwrites a file that another one
// committed, and the files of attempts that died before their commit are
// told apart from committed ones by the manifests alone.

// MapKey names the file of bucket written by the seq-th commit of
// partition part of run: <run>/shuffle/b<bucket>/p<part>-<seq>-<attempt>.arrow.
func MapKey(run string, bucket, part, seq int, attempt string) string {
	return fmt.Sprintf("%s/shuffle/b%04d/p%04d-%06d-%s.arrow", run, bucket, part, seq, attempt)
}

// ReplayKey names the file of bucket written by replay generation gen of
// run's dead letters: <run>/replay/g<gen>-b<bucket>-<attempt>.arrow.
func ReplayKey(run string, gen, bucket int, attempt string) string {
	return fmt.Sprintf("%s/replay/g%04d-b%04d-%s.arrow", run, gen, bucket, attempt)
}

// RegroupKey names the n-th file of sub-part sub of a bucket that a
// reducer re-partitions at level:
// <run>/reduce/b<bucket>/l<level>-s<sub>-<n>-<attempt>.arrow. These files
// live only while the bucket is reduced.
func RegroupKey(run string, bucket, level, sub, n int, attempt string) string {
	return fmt.Sprintf("%s/reduce/b%04d/l%d-s%02d-%06d-%s.arrow", run, bucket, level, sub, n, attempt)
}

// Prefixes are the key prefixes, after "<run>/", of a run's shuffle files
// of every kind: for garbage collection, which alone may list them.
var Prefixes = []string{"shuffle/", "replay/", "reduce/"}
