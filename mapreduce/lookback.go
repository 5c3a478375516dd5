package mapreduce

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/shuffle"
)

// A lookback makes each incremental batch exact for the rows of a recent
// window of time, late or corrected ones included (dbt's microbatch
// lookback): the batch recomputes every group whose time key lies in the
// window from all of its rows, wherever their cursors are, and replaces
// the stored groups of the window with them; it merges its other new
// rows as a batch without one does. A bucket deletes the window's stored
// groups that are its own and writes their recomputed ones in its one
// transaction (see Merger), so that a reader sees each group either as
// it was or as it is now, and a group whose rows all left the window is
// gone. Every aggregate of a window's group is recomputed, so min, max
// and distinct counts are as exact there as sums.
//
// Why the window's rows can be found by a condition on the source: a
// time key is a truncation of a time column (date_trunc and the like),
// trunc(t) <= t and monotone, and the window begins at From = trunc(now -
// Within), which is its own truncation. A row's key is then From or later
// exactly when its time is, so the condition "time >= From" reads the
// rows of the window's groups and no others, and can use an index on the
// time column.

// Lookback is the window that every incremental batch of a run
// recomputes whole (Config.Lookback).
type Lookback struct {
	// Within is how far back from the batch's planning the window
	// reaches: every row whose time is later falls into it.
	Within time.Duration
	// Key is the index, among the output table's keys, of the time key
	// that the window is of.
	Key int
	// Window returns the window that begins at since: From, the first
	// value of the time key that lies in it (the truncation of since),
	// and Where, a condition in the source's SQL that holds for exactly
	// the rows whose key is From or later.
	Window func(since time.Time) (from any, where string, err error)
}

// within is lb's Within, 0 for no lookback.
func (lb *Lookback) within() time.Duration {
	if lb == nil {
		return 0
	}
	return lb.Within
}

// Locator is implemented by sources that can find the rows of a
// condition, which a batch with a lookback reads wherever they lie.
type Locator interface {
	// Locate returns the first and the last cursor in r of the rows that
	// in.Where holds for, and how many there are (0 and no cursors if
	// none).
	Locate(ctx context.Context, in Input, r partition.Range) (first, last, rows int64, err error)
}

// BatchWindow is the window of a batch with a lookback, as its plan
// keeps it: a resumed batch reads the rows and replaces the groups that
// it began with, whenever it resumes.
type BatchWindow struct {
	// Column is the output table's key column of the time key.
	Column string `json:"column"`
	// From is the first value of the time key in the window.
	From windowValue `json:"from"`
	// Where is the source's condition for the window's rows, and Below
	// the mark of the plan before the batch: the batch reads the rows
	// past Below, as any batch does, and the window's rows at or below.
	Where string `json:"where"`
	Below int64  `json:"below"`
}

// input returns in as the plan reads it: for a batch with a window, with
// the window's rows at or below the last mark added to the new ones.
func (p *Plan) input(in Input) Input {
	if w := p.Window; w != nil {
		in.Where = and(in.Where, fmt.Sprintf("%s > %d OR (%s)", sqlname.Quote(in.Cursor), w.Below, w.Where))
	}
	return in
}

// and is the condition that both a and b hold for, "" standing for none.
func and(a, b string) string {
	if a == "" {
		return b
	}
	return "(" + a + ") AND (" + b + ")"
}

// checkLookback reports what keeps a run of spec, reading in from src,
// from recomputing the window of lb in its batches.
func checkLookback(spec Spec, in Input, src Source, lb *Lookback) error {
	var errs []error
	switch {
	case spec.MapOnly:
		errs = append(errs, fmt.Errorf("job %q is map-only: its batches upsert each new row's result, and have no groups of a window to recompute", spec.Name))
	case lb.Key < 0 || lb.Key >= len(spec.Output.Keys):
		errs = append(errs, fmt.Errorf("the lookback's key %d is not one of the %d keys of table %q", lb.Key, len(spec.Output.Keys), spec.Output.Name))
	case in.GroupBy > 0:
		// A letter of a range aggregated at the source has no row of its
		// own to read again (see supersede).
		errs = append(errs, fmt.Errorf("job %q aggregates at the source (Input.GroupBy), whose failed groups have no rows that a window could read again", spec.Name))
	}
	if lb.Window == nil {
		errs = append(errs, fmt.Errorf("the lookback of %s has no window", lb.Within))
	}
	if _, ok := src.(Locator); !ok {
		errs = append(errs, fmt.Errorf("source %s cannot find the rows of a window, which a batch with a lookback reads", src))
	}
	return errors.Join(errs...)
}

// window returns the window of the batch after plan after, planned at
// now, and where the rows it reads at or below after's Mark lie: those
// past it are the batch's in any case.
func window(ctx context.Context, src Source, in Input, spec Spec, lb *Lookback, after *Plan, now time.Time) (*BatchWindow, TableInfo, error) {
	from, where, err := lb.Window(now.Add(-lb.Within))
	if err != nil {
		return nil, TableInfo{}, fmt.Errorf("the window of the last %s: %w", lb.Within, err)
	}
	w := &BatchWindow{Column: spec.Output.Keys[lb.Key].Name, From: windowValue{from}, Where: where, Below: *after.Mark}
	if _, err := json.Marshal(w.From); err != nil {
		return nil, TableInfo{}, fmt.Errorf("the window of the last %s: %w", lb.Within, err)
	}
	in.Where = and(in.Where, where)
	first, last, rows, err := src.(Locator).Locate(ctx, in, partition.Through(math.MinInt64, *after.Mark))
	if err != nil || rows == 0 {
		return w, TableInfo{}, err
	}
	return w, TableInfo{Min: first, Max: last, Rows: rows}, nil
}

// supersede resolves the earlier batches' dead letters of the rows that
// plan, a batch with a window, reads again: such a row that still fails
// gets a letter of this batch, and one that no longer does is counted,
// else the old letter would tell of one failure twice, or of one that is
// no more. The letters of rows the window does not hold stay.
func (r *Runner) supersede(ctx context.Context, plan *Plan) error {
	e := plan.Earlier
	letters, err := e.letters(ctx, r.blobs)
	if err != nil {
		return fmt.Errorf("the dead letters of the earlier batches of run %s: %w", plan.RunID, err)
	}
	in := plan.input(r.in)
	batch := NewBatch(in.Names())
	for _, l := range letters {
		if !plan.Span.Contains(l.Cursor) || l.Cursor > plan.Window.Below {
			continue
		}
		batch.Reset()
		err := r.src.ReadChunk(ctx, in, partition.Through(l.Cursor, l.Cursor), 1, batch)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the row of dead letter %d again: %w", l.Cursor, err)
		}
		if batch.Len() == 0 {
			continue
		}
		e.Failed--
		i, found := slices.BinarySearchFunc(e.Reread, l.Cursor, func(r Reread, c int64) int { return cmp.Compare(r.Cursor, c) })
		if found {
			e.Reread[i].Files = len(e.DeadLetters)
		} else {
			e.Reread = slices.Insert(e.Reread, i, Reread{Cursor: l.Cursor, Files: len(e.DeadLetters)})
		}
	}
	return nil
}

// windowValue is a window's From in a plan, which keeps its Go type (a
// time key is a timestamp or a date) for the sink to compare with.
type windowValue struct{ v any }

type windowJSON struct {
	Timestamp *time.Time `json:"timestamp,omitempty"`
	Date      *Date      `json:"date,omitempty"`
}

// String is the value as mr status shows it.
func (v windowValue) String() string {
	if t, ok := v.v.(time.Time); ok {
		return t.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v.v)
}

func (v windowValue) MarshalJSON() ([]byte, error) {
	switch x := v.v.(type) {
	case time.Time:
		return json.Marshal(windowJSON{Timestamp: &x})
	case Date:
		return json.Marshal(windowJSON{Date: &x})
	}
	return nil, fmt.Errorf("a window begins at a timestamp or a date, not a %T", v.v)
}

func (v *windowValue) UnmarshalJSON(b []byte) error {
	var j windowJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	switch {
	case j.Timestamp != nil:
		v.v = j.Timestamp.UTC()
	case j.Date != nil:
		v.v = *j.Date
	default:
		return errors.New("a window begins at no timestamp or date")
	}
	return nil
}

// window is the plan's window as the Merger sees it, nil for none.
func (w *BatchWindow) window() *Window {
	if w == nil {
		return nil
	}
	return &Window{Column: w.Column, From: w.From.v}
}

// Owned yields the stored keys of the window that hash to the bucket
// (see Merger): the groups whose rows the bucket holds, or held.
func (m mergeParts) Owned(stored OutputRows) (OutputRows, error) {
	br := m.br
	keys, err := br.comb.owned(stored, shuffle.NewKeyHash(br.r.plan.Seed), br.bucket, br.r.plan.Buckets)
	if err != nil {
		return nil, fmt.Errorf("the window of table %s: %w", br.r.spec.Output.Name, err)
	}
	return keys, nil
}

func (m mergeParts) Window() *Window { return m.br.r.plan.Window.window() }
