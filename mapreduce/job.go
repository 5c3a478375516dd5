package mapreduce

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/cockroachdb/apd/v3"
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
type Job[K comparable, V any] struct {
	// Name is the job's stable identity: it keys run ids, so renaming a job
	// starts its runs afresh. Lower case letters, digits and underscores.
	Name        string
	Description string

	Input  Input
	Output Output

	Key   Codec[K]
	Value Codec[V]

	// Map reads one row and emits any number of pairs. A returned error
	// fails the row: it is retried (unless the error is Permanent) and then
	// written to the dead-letter queue; a panic counts as an error. Pairs
	// emitted by a failed attempt are discarded. emit must not be kept past
	// the call. Map runs in several goroutines at once (one per map task),
	// so it must not change shared state without synchronization.
	Map func(ctx context.Context, row Row, emit func(K, V)) error

	// Combine merges two values of the same key.
	Combine func(a, b V) V

	// Finalize, if set, writes the output value columns (Output.Values) of a
	// reduced value. Without it the Value codec's fields are the output
	// value columns.
	// An error fails the group, and with it the run: the SQL rule for a
	// division by zero or an overflow in an aggregate's result.
	Finalize func(v V, out Encoder) error
}

// Input says which rows a job reads by default; the command line may
// override the table and the cursor.
type Input struct {
	Table   string
	Cursor  string   // a unique, monotonic integer column; "id" if empty
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
}

// Definition is a registered job as the engine sees it. Only Job
// implements it: the engine stays free of type parameters while every user
// function keeps its compile-time types.
type Definition interface {
	Spec() Spec
	newCombiner() combiner
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
	return Spec{
		Name:        j.Name,
		Description: j.Description,
		Input:       in,
		Output:      OutputTable{Name: j.Output.Table, Keys: j.Key.Fields, Values: values},
		Shuffle:     append(append([]Field(nil), j.Key.Fields...), j.Value.Fields...),
	}
}

var jobName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Validate reports what is missing or inconsistent in a job definition,
// including a Codec whose Encode or Decode does not follow its Fields.
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
	check(j.Combine != nil, "Combine is nil")
	check(j.Finalize == nil || len(j.Output.Values) > 0, "Finalize is set but Output.Values is empty")
	check(j.Finalize != nil || len(j.Output.Values) == 0, "Output.Values is set but Finalize is nil")
	errs = append(errs, checkCodec("Key", j.Key), checkCodec("Value", j.Value))
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

func checkCodec[T any](name string, c Codec[T]) error {
	if len(c.Fields) == 0 || c.Encode == nil || c.Decode == nil {
		return fmt.Errorf("%s codec needs Fields, Encode and Decode", name)
	}
	for _, f := range c.Fields {
		if f.Name == "" || !f.Type.Valid() {
			return fmt.Errorf("%s codec: field %q has no name or an unknown type", name, f.Name)
		}
		if f.Array {
			return fmt.Errorf("%s codec: field %q is an array, which only Output.Values may hold", name, f.Name)
		}
	}
	var zero T
	enc := &fieldRecorder{}
	c.Encode(zero, enc)
	if err := enc.match(name+".Encode", c.Fields); err != nil {
		return err
	}
	dec := &decodeRecorder{}
	c.Decode(dec)
	return dec.match(name+".Decode", c.Fields)
}

// fieldRecorder is an Encoder that notes the sequence of field types it is
// given, to check a Codec against its Fields. A NULL is noted as type 0,
// which matches any field.
type fieldRecorder struct{ types []Type }

func (r *fieldRecorder) match(what string, fields []Field) error {
	if len(r.types) != len(fields) {
		return fmt.Errorf("%s uses %d fields, Fields lists %d", what, len(r.types), len(fields))
	}
	for i, f := range fields {
		if r.types[i] != 0 && r.types[i] != f.Type {
			return fmt.Errorf("%s field %d (%s) is %s, Fields says %s", what, i, f.Name, r.types[i], f.Type)
		}
	}
	return nil
}

func (r *fieldRecorder) Int64(int64)          { r.types = append(r.types, TypeInt64) }
func (r *fieldRecorder) Float64(float64)      { r.types = append(r.types, TypeFloat64) }
func (r *fieldRecorder) String(string)        { r.types = append(r.types, TypeString) }
func (r *fieldRecorder) Bool(bool)            { r.types = append(r.types, TypeBool) }
func (r *fieldRecorder) Date(Date)            { r.types = append(r.types, TypeDate) }
func (r *fieldRecorder) Time(time.Time)       { r.types = append(r.types, TypeTimestamp) }
func (r *fieldRecorder) Decimal(*apd.Decimal) { r.types = append(r.types, TypeDecimal) }
func (r *fieldRecorder) Bytes([]byte)         { r.types = append(r.types, TypeBytes) }
func (r *fieldRecorder) Null()                { r.types = append(r.types, 0) }
func (r *fieldRecorder) Array(any)            { r.types = append(r.types, 0) }

// decodeRecorder is a Decoder that notes the field types asked of it and
// returns zero values.
type decodeRecorder struct{ fieldRecorder }

func (r *decodeRecorder) Int64() int64     { r.types = append(r.types, TypeInt64); return 0 }
func (r *decodeRecorder) Float64() float64 { r.types = append(r.types, TypeFloat64); return 0 }
func (r *decodeRecorder) String() string   { r.types = append(r.types, TypeString); return "" }
func (r *decodeRecorder) Bool() bool       { r.types = append(r.types, TypeBool); return false }
func (r *decodeRecorder) Date() Date       { r.types = append(r.types, TypeDate); return 0 }
func (r *decodeRecorder) Time() time.Time {
	r.types = append(r.types, TypeTimestamp)
	return time.Time{}
}
func (r *decodeRecorder) Decimal() *apd.Decimal {
	r.types = append(r.types, TypeDecimal)
	return new(apd.Decimal)
}
func (r *decodeRecorder) Bytes() []byte { r.types = append(r.types, TypeBytes); return nil }

// Null answers false, so that a codec goes on to decode the field's type.
func (r *decodeRecorder) Null() bool { return false }
