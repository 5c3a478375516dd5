package mapreduce

import (
	"time"

	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/shuffle"
)

// Checkpoint is a map partition's commit point. Everything it names is
// durable before it is written, and it is replaced atomically, so after a
// crash at any moment a partition resumes from its last checkpoint: rows
// in [Range.Lo, Next) are never read again, shuffle files it does not name
// are garbage, and the DLQ is cut back to DLQBytes.
type Checkpoint struct {
	Partition int             `json:"partition"`
	Range     partition.Range `json:"range"`
	// Next is the lowest cursor value not yet committed.
	Next int64 `json:"next"`
	// Done is set by the commit that reached the end of Range.
	Done bool `json:"done"`
	// Seq counts the commits; it names each commit's shuffle files.
	Seq   int            `json:"seq"`
	Files []shuffle.File `json:"files"`

	Rows   int64 `json:"rows"`   // rows read and committed
	Failed int64 `json:"failed"` // of which sent to the DLQ
	Chunks int64 `json:"chunks"` // keyset queries committed
	// DLQBytes is the length of the partition's DLQ file at this commit.
	DLQBytes int64 `json:"dlq_bytes"`
	// Spilled is the size of Files on disk.
	Spilled int64     `json:"spilled"`
	Updated time.Time `json:"updated"`
}

func newCheckpoint(part int, r partition.Range) *Checkpoint {
	return &Checkpoint{Partition: part, Range: r, Next: r.Lo}
}
