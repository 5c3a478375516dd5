package mapreduce

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/shuffle"
)

// Checkpoint is a map partition's commit point. Everything it names is
// durable before it is saved, and it is replaced atomically, so after a
// crash at any moment a partition resumes from its last checkpoint: rows
// in [Range.Lo, Next) are never read again, and shuffle and dead-letter
// files it does not name are garbage.
type Checkpoint struct {
	// Commit is the plan's (see Store): a checkpoint of another plan does
	// not count.
	Commit    string          `json:"commit"`
	Partition int             `json:"partition"`
	Range     partition.Range `json:"range"`
	// Next is the lowest cursor value not yet committed.
	Next int64 `json:"next"`
	// After, set only for a compound cursor (see Input.CursorColumns), is
	// the tie-breaker of the last committed row, whose cursor is Next: the
	// rows at cursor Next with tie-breakers at or below After are
	// committed too, and the partition resumes with the row after the pair
	// (Next, After). Nil means no row at Next is committed yet.
	After *int64 `json:"after,omitempty"`
	// Done is set by the commit that reached the end of Range.
	Done bool `json:"done"`
	// Seq counts the commits; it names each commit's files, and in a
	// map-only plan each chunk's id (see maponly.go).
	Seq   int            `json:"seq"`
	Files []shuffle.File `json:"files"`
	// DeadLetters are the partition's dead-letter files, one per commit
	// that had failed rows, in order.
	DeadLetters []DeadLetterFile `json:"dead_letters"`

	Rows   int64 `json:"rows"`   // rows read and committed
	Failed int64 `json:"failed"` // of which sent to the DLQ
	Chunks int64 `json:"chunks"` // chunks committed
	// Spilled is the size of Files.
	Spilled int64     `json:"spilled"`
	Updated time.Time `json:"updated"`

	// Pending, in a map-only plan, is the chunk the partition is applying
	// to the sink: whether it counts is the sink's to say (see
	// maponly.go), so the fields above do not include it yet.
	Pending *PendingChunk `json:"pending,omitempty"`
}

// newCheckpoint is the checkpoint of partition part of p before its first
// commit.
func newCheckpoint(p *Plan, part int) *Checkpoint {
	r := p.Partitions[part].Range
	return &Checkpoint{Commit: p.Commit, Partition: part, Range: r, Next: r.Lo}
}

// deadLetterFiles returns the dead-letter files that cp names: those
// committed, then its pending chunk's, if it has one.
func (cp *Checkpoint) deadLetterFiles() []DeadLetterFile {
	if c := cp.Pending; c != nil && c.DeadLetters != nil {
		return append(cp.DeadLetters[:len(cp.DeadLetters):len(cp.DeadLetters)], *c.DeadLetters)
	}
	return cp.DeadLetters
}

// check reports a checkpoint that does not fit partition part of plan p.
// Its seal matched, so this guards against what a seal cannot: a bug, or a
// checkpoint file copied over from another partition. Each rule closes a
// way to a wrong result: a range or cursor off the plan's loses or repeats
// rows; a file under another bucket is reduced with the wrong keys; a key
// of another partition's naming would keep that partition's file from
// garbage collection, or count it twice.
func (cp *Checkpoint) check(p *Plan, part int) error {
	r := p.Partitions[part].Range
	switch {
	case cp.Partition != part:
		return fmt.Errorf("is partition %d's", cp.Partition)
	case cp.Range != r:
		return fmt.Errorf("has range %s, the plan %s", cp.Range, r)
	case cp.Next < r.Lo || cp.Next > r.Hi:
		return fmt.Errorf("resumes at %d, outside its range %s", cp.Next, r)
	case cp.After != nil && !p.Input.Compound():
		return fmt.Errorf("resumes after tie-breaker %d at %d, but the plan's cursor %q is not compound", *cp.After, cp.Next, p.Input.Cursor)
	case cp.After != nil && cp.Next == r.Hi && !r.ToMax:
		return fmt.Errorf("resumes after (%d, %d), outside its range %s", cp.Next, *cp.After, r)
	case cp.Seq < 0 || cp.Rows < 0 || cp.Failed < 0 || cp.Failed > cp.Rows:
		return fmt.Errorf("counts %d commits, %d rows, %d failed", cp.Seq, cp.Rows, cp.Failed)
	case p.MapOnly && len(cp.Files) > 0:
		return fmt.Errorf("names %d shuffle files; the plan is map-only", len(cp.Files))
	}
	if err := cp.checkPending(p, part); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, f := range cp.Files {
		switch {
		case f.Bucket < 0 || f.Bucket >= p.Buckets:
			return fmt.Errorf("names shuffle file %s of bucket %d; the plan has %d buckets", f.Key, f.Bucket, p.Buckets)
		case !ownKey(f.Key, func(seq int, attempt string) string { return shuffle.MapKey(p.RunID, f.Bucket, part, seq, attempt) }):
			return fmt.Errorf("names shuffle file %s, which is not one of bucket %d of partition %d", f.Key, f.Bucket, part)
		case seen[f.Key]:
			return fmt.Errorf("names shuffle file %s twice", f.Key)
		}
		seen[f.Key] = true
	}
	for _, f := range cp.DeadLetters {
		if !ownKey(f.Key, func(seq int, attempt string) string { return dlqKey(p.RunID, part, seq, attempt) }) &&
			!ownKey(f.Key, func(gen int, attempt string) string { return replayDLQKey(p.RunID, part, gen, attempt) }) || seen[f.Key] {
			return fmt.Errorf("names dead-letter file %s, which is not one of partition %d", f.Key, part)
		}
		seen[f.Key] = true
	}
	return nil
}

// ownKey reports whether key is what name makes of the sequence number and
// attempt that key's last two dash-separated fields hold:
// ".../p0001-000002-a1b2c3.arrow" is name(2, "a1b2c3"). The sequence
// number may carry a letter prefix ("g0002", a replay generation).
func ownKey(key string, name func(seq int, attempt string) string) bool {
	base := path.Base(key)
	stem := strings.TrimSuffix(base, path.Ext(base))
	rest, attempt, ok := cutLast(stem, "-")
	if !ok {
		return false
	}
	_, seqText, ok := cutLast(rest, "-")
	seq, err := strconv.Atoi(strings.TrimLeft(seqText, "abcdefghijklmnopqrstuvwxyz"))
	return ok && err == nil && key == name(seq, attempt)
}

// cutLast slices s around the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
