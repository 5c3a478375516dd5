package mapreduce

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mrengine/mr/partition"
)

// Plan is a run's immutable layout: written once when the run starts and
// read back by every resume, so that partitions and buckets never change
// under committed work.
type Plan struct {
	// Format is the version of the run state's layout that the run's
	// state follows (see stateFormat and formatOf): a run planned by an mr
	// that kept its state another way is not resumed, rather than misread.
	Format int `json:"format"`
	// RunID names the run: the job name and a hash of everything that
	// shapes the result, so the same command resumes the same run.
	RunID string `json:"run_id"`
	// Commit is unique to this plan: sinks record applied buckets under
	// it, so that a --fresh plan of the same run applies every bucket anew.
	Commit string `json:"commit"`
	// Replace says that the run replaces its output table (see Replacer)
	// instead of upserting into it. Every plan of a job with a Combine
	// made now does, but an incremental batch (see Batch); a plan saved by
	// an mr that only upserted has it false and is finished that way,
	// since its buckets already applied are in the output table itself.
	Replace bool `json:"replace,omitempty"`
	// MapOnly says that the plan is of a map-only job (see Job): it has no
	// buckets, never replaces its output table, and its map tasks apply
	// every chunk to the sink themselves (see maponly.go).
	MapOnly     bool      `json:"map_only,omitempty"`
	Job         string    `json:"job"`
	Source      string    `json:"source"`
	Sink        string    `json:"sink"`
	Input       Input     `json:"input"`
	OutputTable string    `json:"output_table"`
	Created     time.Time `json:"created"`
	// Pipeline, Stage and Stages are Config's: the pipeline whose stage
	// planned the run, empty for a run of a job alone. A later run of the
	// same job alone resumes the plan with them (see Config.Pipeline).
	Pipeline string `json:"pipeline,omitempty"`
	Stage    int    `json:"stage,omitempty"`
	Stages   int    `json:"stages,omitempty"`

	// Span is the cursor space the run covers, Min through Max of the
	// source when planned (partition.Through; [0, 0) for an empty table):
	// the Partitions tile it exactly, in order, which check verifies on
	// every load.
	Span       partition.Range `json:"span"`
	Partitions []Partition     `json:"partitions"`
	// Buckets is the number of hash buckets, 0 in a map-only plan.
	Buckets int `json:"buckets"`
	// Seed seeds the key hash that assigns keys to buckets.
	Seed uint64 `json:"seed"`
	// Rows is the source's row count (or estimate) when the plan was made.
	Rows int64 `json:"rows"`

	// Mark, if set, is the safe high-water mark the plan reads through
	// (see Marker): its rows are those with cursors at or below it and,
	// in a batch, above the Mark of the plan before. Only a plan with a
	// Mark can be followed by an incremental batch (Runner.Next); one made
	// without Config.Incremental has none, since the largest cursor when
	// it was planned is no safe place to go on from.
	Mark *int64 `json:"mark,omitempty"`
	// Batch counts the run's incremental batches since its full plan,
	// which is batch 0. A batch merges its groups into the output table
	// (Merges) instead of replacing it.
	Batch int `json:"batch,omitempty"`
	// Earlier is what the run's earlier plans committed that outlives
	// them; nil for a run's first plan.
	Earlier *Earlier `json:"earlier,omitempty"`
	// Window, in a batch with a lookback (Config.Lookback), is the window
	// of groups it recomputes whole; its rows at or below the Mark before
	// widen the Span down to the first of them.
	Window *BatchWindow `json:"window,omitempty"`
}

// Merges reports whether the plan merges its groups into the ones the
// output table holds (an incremental batch), rather than replacing it.
func (p *Plan) Merges() bool { return p.Batch > 0 }

// stateFormat is the version of the run state's layout. Version 0 (no
// format field) kept a partition's dead letters in one appended file and
// named shuffle files by path; version 2 wrote state files without seals
// and plans without a Span; version 3 wrote every dead letter's error and
// stack in full, not once per dead-letter file (see letterLine); version 4
// had no partition.Range.ToMax, so its ranges never hold math.MaxInt64.
// This mr resumes version 4 (oldestFormat) as it does 5, since a range
// without ToMax means what it always did; an mr of version 4 refuses
// version 5, which it would misread by dropping the row at math.MaxInt64.
// Version 6 added map-only plans (Plan.MapOnly, no buckets) and the
// chunk a map-only checkpoint names as pending (Checkpoint.Pending),
// which an mr of version 5 would misread: it takes a plan without
// buckets for a damaged one, and a pending chunk that the sink committed
// for one never read, with the dead letters of its rows lost. Only a
// map-only plan is written as version 6 (see formatOf): a plan of a job
// with a Combine holds neither, so it stays version 5, which an mr of
// version 5 still reads. Version 7 added compound cursors
// (Input.CursorColumns) and the tie-breaker a checkpoint resumes after
// (Checkpoint.After, PendingChunk.After, DeadLetter.Tie), which an mr of
// version 6 would misread: it ignores After and reads the committed rows
// at Next again, counting them twice. Only a plan with a compound cursor
// is written as version 7; any other holds none of it and keeps the
// version it had. Version 8 added a batch's lookback window
// (Plan.Window), which an mr of version 7 would misread: it ignores the
// window's condition and merges every row of the widened Span, counting
// the rows below the last mark twice, and the dead letters that a
// window superseded (Earlier.Reread), which it would show again. Only a
// batch with a window, or after one, is written as version 8.
const (
	stateFormat       = 8
	oldestFormat      = 4
	firstSealedFormat = 3
	// mapOnlyFormat is the first version with map-only plans.
	mapOnlyFormat = 6
	// compoundFormat is the first version with compound cursors.
	compoundFormat = 7
	// windowFormat is the first version with lookback windows.
	windowFormat = 8
)

// formatOf is the format a plan of spec over in is written in: the oldest
// that holds all that the run's state may hold, so that an older mr that
// can read it still does.
func formatOf(spec Spec, in Input) int {
	switch {
	case in.Compound():
		return compoundFormat
	case spec.MapOnly:
		return mapOnlyFormat
	}
	return mapOnlyFormat - 1
}

// check reports a plan that this mr cannot resume: one of another format,
// or one whose layout does not hold together (its seal matched, so only a
// bug could make it so; a plan is the root of all other state, so it is
// checked all the same).
func (p *Plan) check() error {
	if p.Format < oldestFormat || p.Format > stateFormat {
		return fmt.Errorf("run %s was planned by another version of mr, which keeps run state in format %d (this mr reads formats %d to %d): "+
			"finish it with that version, or start over with --fresh", p.RunID, p.Format, oldestFormat, stateFormat)
	}
	if err := p.checkLayout(); err != nil {
		return fmt.Errorf("%w: the plan of run %s %w", ErrDamaged, p.RunID, err)
	}
	return nil
}

// checkLayout reports a plan whose partitions do not tile its Span
// exactly (contiguous, in order, none reversed, nothing left over, only
// the last running to math.MaxInt64 and then only if the Span does): a
// row outside them would be lost, a row in two of them counted twice.
func (p *Plan) checkLayout() error {
	switch {
	case p.RunID == "" || !strings.HasPrefix(p.Commit, p.RunID+"."):
		return fmt.Errorf("has commit %q, which is not of run %q", p.Commit, p.RunID)
	case p.MapOnly && (p.Buckets != 0 || p.Replace || p.Format < mapOnlyFormat):
		return fmt.Errorf("is map-only with %d buckets, replace %t, in format %d: a map-only plan has no buckets and upserts, in format %d on",
			p.Buckets, p.Replace, p.Format, mapOnlyFormat)
	case p.Input.Compound() && p.Format < compoundFormat:
		return fmt.Errorf("has the compound cursor %q in format %d: compound cursors are format %d on", p.Input.Cursor, p.Format, compoundFormat)
	case !p.MapOnly && p.Buckets < 1:
		return fmt.Errorf("has %d buckets", p.Buckets)
	case len(p.Partitions) == 0:
		return errors.New("has no partitions")
	}
	at := p.Span.Lo
	for i, part := range p.Partitions {
		switch {
		case part.Lo != at:
			return fmt.Errorf("has partition %d %s, which does not begin where the one before it ends, at %d: the partitions must tile %s", i, part.Range, at, p.Span)
		case part.Hi < part.Lo:
			return fmt.Errorf("has partition %d %s, which ends before it begins", i, part.Range)
		case part.ToMax && (i < len(p.Partitions)-1 || part.Hi != math.MaxInt64):
			return fmt.Errorf("has partition %d %s, which runs to %d but is not the last or ends at %d", i, part.Range, int64(math.MaxInt64), part.Hi)
		}
		at = part.Hi
	}
	if last := p.Partitions[len(p.Partitions)-1]; at != p.Span.Hi || last.ToMax != p.Span.ToMax {
		return fmt.Errorf("has partitions that end with %s, not at the end of %s", last.Range, p.Span)
	}
	switch {
	case p.Mark != nil && !p.Span.Empty() && lastOf(p.Span) > *p.Mark:
		return fmt.Errorf("reads %s, past its high-water mark %d", p.Span, *p.Mark)
	case p.Batch < 0 || p.Batch > 0 && (p.Mark == nil || p.Replace):
		return fmt.Errorf("is batch %d with mark %v and replace %t: a batch merges, through a mark", p.Batch, p.Mark, p.Replace)
	case p.Window != nil && (p.Batch == 0 || p.Format < windowFormat || p.Window.Below > *p.Mark):
		return fmt.Errorf("has a window in batch %d, format %d, below %d with mark %d: a window is of a batch, in format %d on, below its mark",
			p.Batch, p.Format, p.Window.Below, *p.Mark, windowFormat)
	case p.Earlier != nil && len(p.Earlier.Reread) > 0 && p.Format < windowFormat:
		return fmt.Errorf("has dead letters read again in format %d: they are format %d on", p.Format, windowFormat)
	}
	return nil
}

// runID derives a stable run id from what shapes a run's result. A
// map-only job has no buckets, so --buckets leaves its id alone: it is
// hashed as 0, which no other job's run has.
func runID(spec Spec, src, sink string, in Input, partitions, buckets int) string {
	if spec.MapOnly {
		buckets = 0
	}
	h := sha256.New()
	for _, s := range []string{spec.Name, src, sink, in.Table, in.Cursor, strings.Join(in.Columns, ","),
		strings.Join(in.Exprs, "\x00"), in.Where, in.Alias, fmt.Sprint(in.GroupBy),
		spec.Output.Name, fmt.Sprint(partitions), fmt.Sprint(buckets)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return spec.Name + "-" + hex.EncodeToString(h.Sum(nil)[:4])
}

// newPlan describes the source table and splits it into partitions: all
// of it, or with cfg.Incremental the rows through a safe high-water mark
// (see Marker), and only those past after's Mark when after is not nil
// (an incremental batch).
func newPlan(ctx context.Context, id string, spec Spec, src Source, sink Sink, in Input, cfg Config, after *Plan) (*Plan, error) {
	if _, ok := src.(Streamer); in.GroupBy > 0 && !ok {
		return nil, fmt.Errorf("source %s cannot aggregate ranges (Input.GroupBy): it reads rows in chunks only", src)
	}
	if err := checkCompound(in, src, cfg); err != nil {
		return nil, err
	}
	var mark *int64
	if cfg.Incremental {
		m, err := src.(Marker).Mark(ctx, in) // Open checked that it is one
		if err != nil {
			return nil, err
		}
		// A sequence set back (ALTER SEQUENCE … RESTART) marks below the
		// last mark: the rows up to that one are merged already.
		if after != nil && m < *after.Mark {
			cfg.logger().Warn("the cursor's sequence is behind the run's mark; keeping the mark", "run", id, "mark", *after.Mark, "sequence", m)
			m = *after.Mark
		}
		mark = &m
	}
	info, err := src.Describe(ctx, in)
	if err != nil {
		return nil, err
	}
	if mark != nil {
		info = through(info, after, *mark)
	}
	var win *BatchWindow
	if after != nil && cfg.Lookback != nil {
		var old TableInfo
		if win, old, err = window(ctx, src, in, spec, cfg.Lookback, after, time.Now()); err != nil {
			return nil, err
		}
		info = widen(info, old)
	}
	if after != nil {
		cfg.Partitions, cfg.Buckets = batchSize(info.Rows, cfg)
	}
	var nonce [4]byte
	rand.Read(nonce[:])
	buckets := cfg.Buckets
	if spec.MapOnly {
		buckets = 0
	}
	p := &Plan{
		Format:      formatOf(spec, in),
		RunID:       id,
		Commit:      id + "." + hex.EncodeToString(nonce[:]),
		Replace:     !spec.MapOnly,
		MapOnly:     spec.MapOnly,
		Job:         spec.Name,
		Source:      src.String(),
		Sink:        sink.String(),
		Input:       in,
		OutputTable: spec.Output.Name,
		Created:     time.Now().UTC(),
		Pipeline:    cfg.Pipeline,
		Stage:       cfg.Stage,
		Stages:      cfg.Stages,
		Buckets:     buckets,
		Seed:        seedOf(id),
		Rows:        info.Rows,
		Mark:        mark,
		Window:      win,
	}
	if after != nil {
		p.Batch, p.Replace = after.Batch+1, false
	}
	if win != nil {
		p.Format = windowFormat
	}

	switch s, ok := src.(Splitter); {
	case info.Rows == 0:
		p.Partitions = make([]Partition, cfg.Partitions) // all empty
	case ok:
		p.Partitions, err = s.Split(ctx, in, info, cfg.Partitions)
	default:
		p.Partitions, err = EqualWidth(info, cfg.Partitions)
	}
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", id, err)
	}
	if info.Rows > 0 {
		p.Span = partition.Through(info.Min, info.Max)
	}
	if err := p.checkLayout(); err != nil { // a Splitter's bug
		return nil, fmt.Errorf("plan %s: the plan made from %s %w", id, src, err)
	}
	return p, nil
}

// through narrows info to the cursors at or below mark and, for a batch
// after plan after, above after's Mark, estimating its rows as if the
// cursor values were spread evenly: a batch of new rows is a thin slice
// of a large table, which the table's statistics do not see.
func through(info TableInfo, after *Plan, mark int64) TableInfo {
	lo := info.Min
	if after != nil {
		if *after.Mark == math.MaxInt64 {
			return TableInfo{Types: info.Types} // no cursor lies past it
		}
		lo = max(lo, *after.Mark+1)
	}
	hi := min(info.Max, mark)
	if info.Rows == 0 || lo > hi {
		return TableInfo{Types: info.Types}
	}
	if lo == info.Min && hi == info.Max {
		return info
	}
	share := partition.Through(lo, hi).Width() / partition.Through(info.Min, info.Max).Width()
	rows := max(1, int64(math.Ceil(float64(info.Rows)*share)))
	return TableInfo{Min: lo, Max: hi, Rows: rows, Types: info.Types}
}

// widen adds to the rows info describes those old describes, which lie
// before them: a batch's new rows and the window's rows before them.
func widen(info, old TableInfo) TableInfo {
	switch {
	case old.Rows == 0:
		return info
	case info.Rows == 0:
		return TableInfo{Min: old.Min, Max: old.Max, Rows: old.Rows, Types: info.Types}
	}
	info.Min, info.Rows = min(info.Min, old.Min), info.Rows+old.Rows
	return info
}

// Rows per partition and per bucket below which an incremental batch
// gets fewer of them than the run's --partitions and --buckets: each
// partition costs range queries and each bucket a sink transaction, a
// fixed cost that a batch of a few thousand rows would spend many times
// over (16 partitions and buckets made a 10,000-row batch of daily_rollup
// take 0.39 s, against a full run of 10M rows in 40 s). The counts are not
// part of the run's identity, and a bucket's keys need to be in one
// bucket of the batch only: merging reads stored groups by key.
const (
	batchPartitionRows = 10_000
	batchBucketRows    = 50_000
)

// batchSize returns the partitions and buckets of a batch of about rows
// rows: as many as cfg has for a large batch, one per worker for a small
// one.
func batchSize(rows int64, cfg Config) (partitions, buckets int) {
	size := func(per int64, most int) int {
		n := int((rows + per - 1) / per)
		return min(most, max(n, cfg.Workers))
	}
	return size(batchPartitionRows, cfg.Partitions), size(batchBucketRows, cfg.Buckets)
}

// Partition is a planned cursor range and the rows it is estimated to hold.
type Partition struct {
	partition.Range
	Rows int64 `json:"rows"`
}

// EqualWidth splits the cursor span of info into n ranges of equal width,
// and estimates their rows as if the cursor values were spread evenly: the
// plan without a Splitter, and a Splitter's last resort.
func EqualWidth(info TableInfo, n int) ([]Partition, error) {
	ranges, err := partition.Split(info.Min, info.Max, n)
	if err != nil {
		return nil, err
	}
	span := partition.Through(info.Min, info.Max).Width()
	parts := make([]Partition, n)
	for i, r := range ranges {
		parts[i] = Partition{Range: r, Rows: int64(float64(info.Rows) * r.Width() / span)}
	}
	return parts, nil
}

// seedOf derives the bucket hash seed from a run id.
func seedOf(id string) uint64 {
	sum := sha256.Sum256([]byte(id))
	return binary.LittleEndian.Uint64(sum[:8])
}
