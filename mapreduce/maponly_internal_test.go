package mapreduce

import (
	"math"
	"strings"
	"testing"

	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/shuffle"
)

// TestPlan_ChunkID: chunk ids tile the sink's 32-bit bucket numbers
// without a collision, and the first id that would not fit is a clear
// error, not a wrapped-around id that another chunk holds.
func TestPlan_ChunkID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		partitions, part, seq int
		want                  int // -1: an error
	}{
		{1, 0, 0, 0},
		{1, 0, math.MaxInt32, math.MaxInt32},
		{16, 3, 2, 35},
		{100_000, 0, 21_474, 2_147_400_000},
		{100_000, 83_647, 21_474, math.MaxInt32},
		{100_000, 83_648, 21_474, -1},
		{100_000, 99_999, 21_474, -1},
		{1, 0, -1, -1},
	} {
		p := &Plan{Partitions: make([]Partition, c.partitions)}
		id, err := p.chunkID(c.part, c.seq)
		switch {
		case c.want < 0 && (err == nil || !strings.Contains(err.Error(), "--chunk-size")):
			t.Errorf("chunkID(%d, %d) of %d partitions = %d, %v; want an error naming --chunk-size", c.part, c.seq, c.partitions, id, err)
		case c.want >= 0 && (err != nil || id != c.want):
			t.Errorf("chunkID(%d, %d) of %d partitions = %d, %v; want %d", c.part, c.seq, c.partitions, id, err, c.want)
		}
	}
}

// TestCheckpoint_CheckPending: a pending chunk that does not fit its
// checkpoint and plan is damage, for each way it could lose or repeat
// rows.
func TestCheckpoint_CheckPending(t *testing.T) {
	t.Parallel()
	setup := func() (*Checkpoint, *Plan) {
		p := &Plan{RunID: "r", MapOnly: true, Partitions: []Partition{
			{Range: partition.Range{Lo: 0, Hi: 100}}, {Range: partition.Range{Lo: 100, Hi: 200}}}}
		cp := &Checkpoint{Partition: 1, Range: p.Partitions[1].Range, Next: 120, Seq: 3,
			Pending: &PendingChunk{ID: 7, Next: 150, Rows: 30, Failed: 1, DeadLetters: &DeadLetterFile{Key: dlqKey("r", 1, 3, "abcdef")}}}
		return cp, p
	}
	if cp, p := setup(); cp.check(p, 1) != nil {
		t.Fatalf("a sound pending chunk fails its check: %v", cp.check(p, 1))
	}
	for name, change := range map[string]func(cp *Checkpoint, p *Plan){
		"NotMapOnly":   func(_ *Checkpoint, p *Plan) { p.MapOnly, p.Buckets = false, 1 },
		"Done":         func(cp *Checkpoint, _ *Plan) { cp.Done = true },
		"OtherID":      func(cp *Checkpoint, _ *Plan) { cp.Pending.ID = 5 },
		"OtherSeq":     func(cp *Checkpoint, _ *Plan) { cp.Seq = 2 },
		"Backwards":    func(cp *Checkpoint, _ *Plan) { cp.Pending.Next = 119 },
		"PastRange":    func(cp *Checkpoint, _ *Plan) { cp.Pending.Next = 201 },
		"NoRows":       func(cp *Checkpoint, _ *Plan) { cp.Pending.Rows, cp.Pending.Failed = 0, 0 },
		"AllFailed":    func(cp *Checkpoint, _ *Plan) { cp.Pending.Failed = 30 },
		"OtherPart":    func(cp *Checkpoint, _ *Plan) { cp.Pending.DeadLetters.Key = dlqKey("r", 0, 3, "abcdef") },
		"OtherChunk":   func(cp *Checkpoint, _ *Plan) { cp.Pending.DeadLetters.Key = dlqKey("r", 1, 2, "abcdef") },
		"LettersTwice": func(cp *Checkpoint, _ *Plan) { cp.DeadLetters = []DeadLetterFile{*cp.Pending.DeadLetters} },
		"ShuffleFiles": func(cp *Checkpoint, _ *Plan) { cp.Files = make([]shuffle.File, 1) },
	} {
		cp, p := setup()
		change(cp, p)
		if err := cp.check(p, 1); err == nil {
			t.Errorf("%s: checkpoint %+v with pending chunk %+v passes its check", name, cp, cp.Pending)
		}
	}
}
