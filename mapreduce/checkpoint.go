package mapreduce

import (
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
	// Done is set by the commit that reached the end of Range.
	Done bool `json:"done"`
	// Seq counts the commits; it names each commit's files.
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
}

// newCheckpoint is the checkpoint of partition part of p before its first
// commit.
func newCheckpoint(p *Plan, part int) *Checkpoint {
	r := p.Partitions[part].Range
	return &Checkpoint{Commit: p.Commit, Partition: part, Range: r, Next: r.Lo}
}
