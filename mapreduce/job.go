package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Job is a typed map/reduce job: Map turns each source row into (key,
// value) pairs, Combine folds the values of one key, and the result lands
// in the output table, one row per key.
//
// Schematically:
//
//	Map:      Row → emit(K, V)*
//	Combine:  V × V → V          associative and commutative
//	Finalize: V → output values   optional
//
// Combine is applied map-side, reduce-side and across spill files in no
// fixed order or grouping, so it must be associative and commutative, and
// must not keep or modify its arguments' memory.
//
// # Map-only jobs
//
// A job without Combine is map-only: the classic "process each row,
// upsert its result" job, with no shuffle and no reduce. Each chunk of
// rows (Config.ChunkSize) is one sink transaction that upserts the pairs
// its rows emitted, each keyed by its own key, so results appear in the
// output table as the run goes, and a crash at any moment neither loses a
// chunk nor applies one twice (see maponly.go). A chunk's pairs are held
// until it is applied, so ChunkSize, not Config.Memory, bounds them.
// Release must be nil, and Incremental, Restore and Input.GroupBy unset:
// --incremental needs no merge to upsert a batch of new rows, only a
// source that can take a safe high-water mark. Finalize may still shape
// the output columns; its error stops the run, as for any job.
//
// A map-only run does not replace its output table: rows of keys that it
// does not emit (of rows deleted since an earlier run, say) stay. Of the
// pairs of one key, the one emitted last in cursor order wins within a
// chunk, and a later chunk of a partition overwrites an earlier one; a
// key emitted in two partitions holds whichever value the sink applied
// last, which with several workers may be either. --partitions 1
// --workers 1 is the sequential pattern: one task upserts the chunks in
// cursor order, so the value of a key's last row wins.
type Job[K comparable, V any] struct {
	// Name is the job's stable identity: it keys run ids, so renaming a job
	// starts its runs afresh. Lower case letters, digits and underscores.
	Name        string
	Description string

	Input  Input
	Output Output

	// Key and Value lay K and V out as the output's key and value
	// columns. Left zero, each is derived from its Go type when the job
	// is validated: a struct's fields are the columns (see Codec).
	Key   Codec[K]
	Value Codec[V]

	// Map reads one row and emits any number of pairs. A returned error
	// fails the row: it is retried (unless the error is Permanent) and then
	// written to the dead-letter queue; a panic counts as an error. Pairs
	// emitted by a failed attempt are discarded. emit must not be kept past
	// the call. Map runs in several goroutines at once (one per map task),
	// so it must not change shared state without synchronization.
	Map func(ctx context.Context, row Row, emit func(K, V)) error

	// Combine merges two values of the same key. Sums of integers should
	// use AddInt64, which stops the run, naming the key, where a plain +
	// would wrap around and write a wrong total. nil makes the job
	// map-only (see Job).
	Combine func(a, b V) V

	// Release, if set, is given each value Map emitted once the engine
	// holds it no more: Combine merged it into the value of its key, or
	// the Map attempt that emitted it failed. Map may then emit it again,
	// so that a job whose values are costly to allocate (a rollup's
	// groups) allocates one per key, not one per row. A value the engine
	// keeps as its key's first is never released. With Release, Combine
	// must merge b into a and return a.
	Release func(v V)

	// ValueBytes, if set, is the memory a value holds beyond
	// unsafe.Sizeof(V), on average: what a pointer or slice value points
	// to (a rollup's aggregate states), which the memory budget must count.
	ValueBytes int

	// Finalize, if set, writes the output value columns (Output.Values) of a
	// reduced value. Without it the Value codec's fields are the output
	// value columns.
	// An error fails the group, and with it the run: the SQL rule for a
	// division by zero or an overflow in an aggregate's result.
	Finalize func(v V, out Encoder) error

	// Incremental declares that Combine may merge new values into the
	// values an earlier run stored in the output table, so that a run with
	// Config.Incremental reads only the rows added since and merges their
	// values into the stored ones (see Runner.Next). It holds for sums,
	// counts, minima, maxima and mergeable sketches, not for a value that
	// depends on rows the new ones replace. Without Finalize the output's
	// value columns are V's, which the Value codec reads back; with it,
	// Restore must say how.
	Incremental bool

	// Restore, with Finalize and Incremental, reads a value back from its
	// stored output row: d yields the output columns RestoreColumns names
	// (of Output.Values, not arrays), in that order, as Finalize wrote
	// them. A rollup keeps its aggregate states in a column for it. An
	// error stops the run, naming the key: the table holds a row that
	// this job did not write.
	Restore        func(d Decoder) (V, error)
	RestoreColumns []string
}

// Input says which rows a job reads by default; the command line may
// override the table and the cursor.
type Input struct {
	Table string
	// Cursor is a unique, monotonic integer column, "id" if empty; or a
	// compound cursor "ts,id", an order column (integer, date, timestamp)
	// and an integer tie-breaker, unique together (see CursorColumns).
	Cursor  string
	Columns []string // the columns Map reads, by index, in this order

	// Exprs are SQL expressions over a row of Table that the source
	// computes, which Map reads after Columns (index len(Columns)+i): the
	// keys and arguments of a declarative rollup. Where, if set, is a SQL
	// condition on the row; the source reads only the rows it holds for.
	// Both are SQL as a user wrote it, so the source runs them inside a
	// read-only transaction, one statement per query, and refers to Table
	// as Alias when that is set.
	Exprs []string
	Where string
	Alias string

	// GroupBy, if above zero, makes the source aggregate each range
	// itself: a row is then one group of the first GroupBy expressions,
	// the others being aggregates over it (a rollup's partial aggregation,
	// pushed down). Groups come in no cursor order, so a source that is a
	// Streamer gives every group the range's last cursor, and the engine
	// commits the range whole (it may spill files on the way, which only
	// the range's checkpoint makes count): a crash redoes it, never half
	// of it.
	GroupBy int
}

// Names returns the names of a row's values, in Row index order: the
// columns, then the expressions' SQL text.
func (in Input) Names() []string { return slices.Concat(in.Columns, in.Exprs) }

// Output names the output table. Its key columns are the Key codec's
// fields; its value columns are Values when the job has a Finalize, else
// the Value codec's fields.
type Output struct {
	Table  string
	Values []Field
}

// OutputTable describes an output table to a Sink: its name, its primary key
// columns and its value columns, in row order.
type OutputTable struct {
	Name   string
	Keys   []Field
	Values []Field
}

// Spec is a job with its types erased: what the engine, the registry and
// the sinks need to know about it.
type Spec struct {
	Name        string
	Description string
	Input       Input
	Output      OutputTable
	// Shuffle is the layout of map output records: key fields, then value
	// fields.
	Shuffle []Field
	// Incremental is the job's Incremental; Restore lists the output
	// columns an incremental run reads back from the output table (see
	// Merger), nil for a job that is not incremental.
	Incremental bool
	Restore     []Field
	// MapOnly says that the job has no Combine: each chunk's pairs are
	// upserted as they are (see Job).
	MapOnly bool
}

// Definition is a registered job as the engine sees it. Only Job
// implements it: the engine stays free of type parameters while every user
// function keeps its compile-time types.
type Definition interface {
	Spec() Spec
	// newCombiner returns an empty combiner whose table has room for
	// keys keys (0 if unknown), so that it need not grow to them.
	newCombiner(keys int) combiner
	// checked returns the job validated, its codecs derived, as a copy:
	// running a job never writes to the caller's variable, which other
	// runs may be reading.
	checked() (Definition, error)
}

var _ Definition = (*Job[int64, int64])(nil)

// Spec returns the job's type-erased description.
func (j *Job[K, V]) Spec() Spec {
	in := j.Input
	if in.Cursor == "" {
		in.Cursor = "id"
	}
	values := j.Value.Fields
	if j.Finalize != nil {
		values = j.Output.Values
	}
	spec := Spec{
		Name:        j.Name,
		Description: j.Description,
		Input:       in,
		Output:      OutputTable{Name: j.Output.Table, Keys: j.Key.Fields, Values: values},
		Shuffle:     append(append([]Field(nil), j.Key.Fields...), j.Value.Fields...),
		Incremental: j.Incremental,
		MapOnly:     j.Combine == nil,
	}
	if j.Incremental {
		spec.Restore = j.restoreFields()
	}
	return spec
}

// restoreFields returns the output value columns that Restore reads, or
// without Finalize the Value codec's; a name that is not a value column
// is left out, for Validate to name.
func (j *Job[K, V]) restoreFields() []Field {
	if j.Finalize == nil {
		return j.Value.Fields
	}
	var fields []Field
	for _, name := range j.RestoreColumns {
		if i := slices.IndexFunc(j.Output.Values, func(f Field) bool { return f.Name == name }); i >= 0 {
			fields = append(fields, j.Output.Values[i])
		}
	}
	return fields
}

func (j *Job[K, V]) checked() (Definition, error) {
	c := *j
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var jobName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Validate reports what is missing or inconsistent in a job definition,
// including a Codec whose Encode or Decode does not follow its Fields, or
// whose Decode reads two fields in the other order than Encode writes
// them. It derives a Key or Value codec left without Encode and Decode
// from K or V (see Codec), in j, once: Register and Run call it, so the
// per-record path never reflects.
func (j *Job[K, V]) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(jobName.MatchString(j.Name), "name %q must be lower case letters, digits and underscores, starting with a letter", j.Name)
	check(j.Input.Table != "", "Input.Table is empty")
	check(j.Output.Table != "", "Output.Table is empty")
	check(j.Map != nil, "Map is nil")
	if j.Combine == nil { // map-only: nothing merges values, or reads them back
		check(j.Release == nil, "Release is set but Combine is nil: a map-only job holds each value until its chunk is applied")
		check(!j.Incremental && j.Restore == nil && len(j.RestoreColumns) == 0,
			"Incremental, Restore or RestoreColumns is set but Combine is nil: a map-only job runs --incremental without them, upserting the new rows")
		check(j.Input.GroupBy == 0, "Input.GroupBy is set but Combine is nil: the groups of an aggregated range need a Combine")
	}
	check(j.Finalize == nil || len(j.Output.Values) > 0, "Finalize is set but Output.Values is empty")
	check(j.Finalize != nil || len(j.Output.Values) == 0, "Output.Values is set but Finalize is nil")
	check(j.Incremental || j.Restore == nil && len(j.RestoreColumns) == 0, "Restore is set but Incremental is not")
	check(!j.Incremental || j.Finalize == nil || j.Restore != nil && len(j.RestoreColumns) > 0,
		"Incremental with Finalize needs Restore and RestoreColumns: how to read a value back from the output table")
	check(j.Finalize != nil || j.Restore == nil, "Restore is set but Finalize is nil: the Value codec reads values back")
	for _, name := range j.RestoreColumns {
		i := slices.IndexFunc(j.Output.Values, func(f Field) bool { return f.Name == name })
		check(i >= 0, "RestoreColumns names %q, which is not one of Output.Values", name)
		check(i < 0 || !j.Output.Values[i].Array, "RestoreColumns names %q, an array column, which cannot be read back", name)
	}
	if c, err := codecFor("Key", j.Key); err != nil {
		errs = append(errs, err)
	} else {
		j.Key = c
	}
	if c, err := codecFor("Value", j.Value); err != nil {
		errs = append(errs, err)
	} else {
		j.Value = c
	}
	if j.Finalize != nil && len(j.Output.Values) > 0 && j.Value.Encode != nil {
		var zero V
		rec := &fieldRecorder{}
		_ = j.Finalize(zero, rec) // only the fields it writes matter here
		errs = append(errs, rec.match("Finalize", j.Output.Values))
	}
	names := map[string]bool{}
	for _, f := range j.Spec().Output.Keys {
		names[f.Name] = true
	}
	for _, f := range j.Spec().Output.Values {
		check(!names[f.Name], "output column %q appears twice", f.Name)
		names[f.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("job %q: %w", j.Name, err)
	}
	return nil
}
