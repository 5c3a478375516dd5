package rollup

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cockroachdb/apd/v3"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/rollup/agg"
)

// job is a compiled rollup at run time: how a row becomes a key and a
// group, and how groups merge and finalize. Its mapreduce.Job has the key
// type string (the key values, framed) and the value type *group.
type job struct {
	keys       []keyFunc
	calls      []call
	outputs    []outputExpr
	keepStates bool // write the states too (Options.KeepStates)
	nargs      int  // the arguments of a row, of all calls together
	valueBytes int  // the memory a group holds (mapreduce.Job.ValueBytes)

	// rows holds the groups Map emitted and the combiner merged and
	// released, for Map to emit again (see mapreduce.Job.Release): a row
	// that meets its group costs no allocation of its own.
	rows sync.Pool
}

// keyFunc computes one key value from a row.
type keyFunc struct {
	name    string
	col     int      // the row value it is computed from
	kind    agg.Kind // of the output value
	sqlType string   // of the output column, as PostgreSQL's GROUP BY gives it
	trunc   func(micros int64) int64
}

// call is one aggregate call: its function and the row values of its
// arguments.
type call struct {
	fn   *agg.Func
	cols []int
	// partials, when the source aggregates each range, are the row values
	// of fn's partial aggregates (agg.Func.Partials), of partialKinds.
	partials     []int
	partialKinds []agg.Kind
}

// group is the value of one key: the aggregates' states, or, while the
// group has seen only the row Map emitted it for, that row's arguments,
// so that a row costs no states of its own: most rows meet their group in
// the combiner and are added to its states there.
type group struct {
	states []agg.State
	row    []agg.Value // every call's arguments in turn, while states is nil
	// argv is where addRow points at the arguments of one call for Add:
	// a slice of them on the stack would move to the heap per row, as
	// Add is an interface's method, and no call takes more than two.
	argv [2]*agg.Value
}

// rowKey frames the key values of row: per key a NULL tag, then the
// value, so that equal keys (in SQL's sense: 1.5 = 1.50, -0 = 0) give
// equal strings.
func (j *job) rowKey(row mapreduce.Row) (string, error) {
	buf := scratchBufs.Get().(*[]byte)
	defer scratchBufs.Put(buf)
	b := (*buf)[:0]
	var v agg.Value
	for _, k := range j.keys {
		if err := readValue(row, k.col, k.kind, &v); err != nil {
			return "", err
		}
		if v.Null {
			return "", fmt.Errorf("key %s is NULL: mr's output tables key on NOT NULL columns (coalesce it to a value at the source)", k.name)
		}
		if k.trunc != nil {
			v.Int = k.trunc(micros(&v))
			if k.kind == agg.KindDate { // time_bucket of a date is a date
				v.Int = floorDiv(v.Int, microsPerDay)
			}
			v.Kind = k.kind
		}
		b = appendKey(b, &v)
	}
	*buf = b
	return string(b), nil
}

// scratchBufs hold the bytes of a key or a state while it is built: a
// spill encodes every key and state, a reduce decodes every key.
var scratchBufs = sync.Pool{New: func() any { return new([]byte) }}

// appendKey appends v's frame: a tag byte, 0 for NULL, else 1 and then 8
// bytes for the fixed-size kinds and a length and bytes for the others.
// Numerics are reduced and floats canonical, so that values SQL calls
// equal frame alike.
func appendKey(b []byte, v *agg.Value) []byte {
	if v.Null {
		return append(b, 0)
	}
	b = append(b, 1)
	switch v.Kind {
	case agg.KindFloat:
		f := v.Float
		if f == 0 {
			f = 0 // -0 = 0
		} else if math.IsNaN(f) {
			f = math.NaN()
		}
		return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
	case agg.KindDecimal:
		var d apd.Decimal
		d.Reduce(&v.Dec)
		return appendBytes(b, d.Text('f'))
	case agg.KindText:
		return appendBytes(b, v.Str)
	case agg.KindBytes:
		return appendBytes(b, v.Bytes)
	}
	return binary.BigEndian.AppendUint64(b, uint64(v.Int))
}

func appendBytes[S string | []byte](b []byte, x S) []byte {
	return append(binary.AppendUvarint(b, uint64(len(x))), x...)
}

// keyCodec lays the framed key out as the output's key columns.
func (j *job) keyCodec() mapreduce.Codec[string] {
	fields := make([]mapreduce.Field, len(j.keys))
	for i, k := range j.keys {
		fields[i] = mapreduce.Field{Name: k.name, Type: fieldType(k.kind), SQLType: k.sqlType}
	}
	return mapreduce.Codec[string]{
		Fields: fields,
		Encode: func(key string, e mapreduce.Encoder) {
			// A view of the key's bytes, read only: encoding a key twice
			// per spilled record (hash, then record) copies nothing.
			b := unsafe.Slice(unsafe.StringData(key), len(key))
			for _, k := range j.keys {
				if len(b) == 0 { // Validate's zero key
					writeValue(e, &agg.Value{Kind: k.kind, Null: true})
					continue
				}
				v := agg.Value{Kind: k.kind, Null: b[0] == 0}
				if b = b[1:]; !v.Null {
					b = readKey(b, k.kind, &v)
				}
				writeValue(e, &v)
			}
		},
		Decode: func(d mapreduce.Decoder) string {
			buf := scratchBufs.Get().(*[]byte)
			defer scratchBufs.Put(buf)
			b := (*buf)[:0]
			for _, k := range j.keys {
				v := decodeValue(d, k.kind)
				b = appendKey(b, &v)
			}
			*buf = b
			return string(b)
		},
	}
}

// readKey reads one frame's value (past its tag) from b, a view of a key
// string's bytes, into v, and returns the rest of b. A text or bytes value
// aliases the key, which is immutable: reading copies nothing.
func readKey(b []byte, kind agg.Kind, v *agg.Value) []byte {
	v.Kind = kind
	switch kind {
	case agg.KindFloat:
		v.Float = math.Float64frombits(binary.BigEndian.Uint64(b))
		return b[8:]
	case agg.KindDecimal, agg.KindText, agg.KindBytes:
		n, w := binary.Uvarint(b)
		x := b[w : w+int(n)]
		switch kind {
		case agg.KindDecimal:
			if err := setDecimalText(&v.Dec, unsafe.String(unsafe.SliceData(x), len(x))); err != nil {
				panic("rollup: a framed key holds a bad numeric: " + err.Error())
			}
		case agg.KindText:
			v.Str = unsafe.String(unsafe.SliceData(x), len(x))
		default:
			v.Bytes = x
		}
		return b[w+int(n):]
	}
	v.Int = int64(binary.BigEndian.Uint64(b))
	return b[8:]
}

// valueCodec lays a group out as its states' encodings, one bytea field
// per aggregate call.
func (j *job) valueCodec() mapreduce.Codec[*group] {
	fields := make([]mapreduce.Field, len(j.calls))
	for i := range j.calls {
		fields[i] = mapreduce.Field{Name: fmt.Sprintf("state%d", i), Type: mapreduce.TypeBytes}
	}
	return mapreduce.Codec[*group]{
		Fields: fields,
		Encode: func(g *group, e mapreduce.Encoder) {
			if g == nil { // Validate's zero value
				for range j.calls {
					e.Null()
				}
				return
			}
			if err := j.materialize(g); err != nil {
				panic(err)
			}
			buf := scratchBufs.Get().(*[]byte)
			defer scratchBufs.Put(buf)
			b := *buf
			for _, s := range g.states {
				var err error
				if b, err = s.AppendBinary(b[:0]); err != nil {
					panic(fmt.Errorf("rollup: encode a state: %w", err))
				}
				e.Bytes(b)
			}
			*buf = b
		},
		Decode: func(d mapreduce.Decoder) *group {
			g := &group{states: make([]agg.State, len(j.calls))}
			for i, c := range j.calls {
				var b []byte
				if !d.Null() {
					b = d.Bytes()
				}
				if len(b) == 0 { // Validate's zero value: no encoding is empty
					g.states[i] = c.fn.New()
					continue
				}
				s, err := c.fn.Decode(b)
				if err != nil {
					panic(fmt.Errorf("rollup: a shuffle file holds a bad %s state: %w", c.fn, err))
				}
				g.states[i] = s
			}
			return g
		},
	}
}

// rowGroup reads the arguments of every call from row, or, when the
// source aggregated the row's group, the states of its partials.
func (j *job) rowGroup(row mapreduce.Row) (*group, error) {
	if len(j.calls) > 0 && j.calls[0].partialKinds != nil {
		return j.partialGroup(row)
	}
	g, _ := j.rows.Get().(*group)
	if g == nil {
		g = &group{row: make([]agg.Value, j.nargs)}
	}
	i := 0
	for _, c := range j.calls {
		for a, col := range c.cols {
			if err := readValue(row, col, c.fn.Args[a].Kind, &g.row[i]); err != nil {
				j.rows.Put(g)
				return nil, err
			}
			i++
		}
	}
	return g, nil
}

// release takes back a group that Map emitted and the combiner merged.
func (j *job) release(g *group) {
	if g.states == nil && len(g.row) == j.nargs { // a row's group, not a decoded one
		j.rows.Put(g)
	}
}

// partialGroup builds a group's states from the partial aggregates the
// source computed for it.
func (j *job) partialGroup(row mapreduce.Row) (*group, error) {
	g := &group{states: make([]agg.State, len(j.calls))}
	var vals []agg.Value
	for i, c := range j.calls {
		vals = vals[:0]
		for p, col := range c.partials {
			vals = append(vals, agg.Value{})
			if err := readValue(row, col, c.partialKinds[p], &vals[p]); err != nil {
				return nil, err
			}
		}
		s, err := c.fn.FromPartials(vals)
		if err != nil {
			return nil, err
		}
		g.states[i] = s
	}
	return g, nil
}

// groupBytes estimates the memory of a group with states: the group, its
// slice of states and each state.
func (j *job) groupBytes() int {
	n := int(unsafe.Sizeof(group{})) + len(j.calls)*int(unsafe.Sizeof(agg.State(nil)))
	for _, c := range j.calls {
		n += c.fn.StateBytes()
	}
	return n
}

// materialize turns a group holding one row into states.
func (j *job) materialize(g *group) error {
	if g.states != nil {
		return nil
	}
	g.states = make([]agg.State, len(j.calls))
	for i, c := range j.calls {
		g.states[i] = c.fn.New()
	}
	row := g.row
	g.row = nil
	return j.addRow(g, row)
}

// addRow adds the arguments of one row to g's states.
func (j *job) addRow(g *group, row []agg.Value) error {
	defer clear(g.argv[:]) // so that g holds no row
	for i, c := range j.calls {
		args := g.argv[:len(c.cols)]
		for a := range args {
			args[a] = &row[0]
			row = row[1:]
		}
		if err := g.states[i].Add(args...); err != nil {
			return fmt.Errorf("rollup: %s: %w", c.fn, err)
		}
	}
	return nil
}

// combine merges b into a, which it returns; the engine owns a and
// hands b over.
func (j *job) combine(a, b *group) *group {
	if err := j.materialize(a); err != nil {
		panic(err)
	}
	if b.states == nil {
		if err := j.addRow(a, b.row); err != nil {
			panic(err)
		}
		return a
	}
	for i, s := range a.states {
		if err := s.Merge(b.states[i]); err != nil {
			panic(fmt.Errorf("rollup: merge %s: %w", j.calls[i].fn, err))
		}
	}
	return a
}

const microsPerDay = 86400 * 1_000_000

// micros is a date or timestamp value in microseconds since 1970.
func micros(v *agg.Value) int64 {
	if v.Kind == agg.KindDate {
		return v.Int * microsPerDay
	}
	return v.Int
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// readValue reads the row value col as kind into v: NULL, or the value
// converted by Row's getters, whose panic on a value that does not convert
// the engine turns into the row's error.
func readValue(row mapreduce.Row, col int, kind agg.Kind, v *agg.Value) error {
	v.Kind, v.Null = kind, false
	if row.Null(col) {
		v.Null = true
		return nil
	}
	switch kind {
	case agg.KindInt:
		v.Int = row.Int64(col)
	case agg.KindFloat:
		v.Float = row.Float64(col)
	case agg.KindDecimal:
		switch x := row.Value(col).(type) {
		case string:
			if err := setDecimalText(&v.Dec, x); err != nil {
				return fmt.Errorf("column %d: %q is not a number", col, x)
			}
		default:
			v.SetDecimal(row.Decimal(col))
		}
	case agg.KindText:
		v.Str = row.String(col)
	case agg.KindBool:
		v.Int = 0
		if row.Bool(col) {
			v.Int = 1
		}
	case agg.KindDate:
		*v = agg.DateValue(row.Time(col))
	case agg.KindTimestamp:
		*v = agg.TimestampValue(row.Time(col))
	case agg.KindBytes:
		v.Bytes = bytes.Clone(row.Bytes(col))
	}
	return nil
}

// setDecimalText sets d to the numeric s spells, as apd's SetString does,
// without its allocations (it splices the digits around the point into a
// new string) for the text that sources and key frames hold: an optional
// minus, then up to 19 digits with an optional point, whose coefficient
// fits d's inline words. Other text goes to SetString.
func setDecimalText(d *apd.Decimal, s string) error {
	t, neg := s, false
	if t != "" && t[0] == '-' {
		t, neg = t[1:], true
	}
	var coef uint64
	digits, scale := 0, -1
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= '0' && c <= '9' && digits < 19:
			coef = coef*10 + uint64(c-'0')
			digits++
		case c == '.' && scale < 0:
			scale = len(t) - i - 1
		default:
			_, _, err := d.SetString(s)
			return err
		}
	}
	if digits == 0 {
		_, _, err := d.SetString(s)
		return err
	}
	d.Form, d.Negative, d.Exponent = apd.Finite, neg, -int32(max(scale, 0))
	d.Coeff.SetUint64(coef)
	return nil
}

// decodeValue reads one key field of kind from d.
func decodeValue(d mapreduce.Decoder, kind agg.Kind) agg.Value {
	v := agg.Value{Kind: kind}
	if d.Null() {
		v.Null = true
		return v
	}
	switch kind {
	case agg.KindInt:
		v.Int = d.Int64()
	case agg.KindFloat:
		v.Float = d.Float64()
	case agg.KindDecimal:
		v.Dec.Set(d.Decimal())
	case agg.KindText:
		v.Str = d.String()
	case agg.KindBool:
		if d.Bool() {
			v.Int = 1
		}
	case agg.KindDate:
		v.Int = int64(d.Date())
	case agg.KindTimestamp:
		v.Int = d.Time().UnixMicro()
	case agg.KindBytes:
		v.Bytes = d.Bytes()
	}
	return v
}

// writeValue writes v as an output field.
func writeValue(e mapreduce.Encoder, v *agg.Value) {
	if v.Null {
		e.Null()
		return
	}
	switch v.Kind {
	case agg.KindInt:
		e.Int64(v.Int)
	case agg.KindFloat:
		e.Float64(v.Float)
	case agg.KindDecimal:
		// A copy, so that only a decimal moves to the heap: passing
		// &v.Dec to the interface would move every v there, as the key
		// codec encodes one per key field per spilled record.
		d := v.Dec
		e.Decimal(&d)
	case agg.KindText:
		e.String(v.Str)
	case agg.KindBool:
		e.Bool(v.Int != 0)
	case agg.KindDate:
		e.Date(mapreduce.Date(v.Int))
	case agg.KindTimestamp:
		e.Time(time.UnixMicro(v.Int).UTC())
	case agg.KindBytes:
		e.Bytes(v.Bytes)
	case agg.KindArray:
		e.(mapreduce.ArrayEncoder).Array(arrayOf(v.Elems))
	}
}

// arrayOf is the Go slice of an array's elements that the sinks take.
func arrayOf(elems []agg.Value) any {
	if len(elems) == 0 {
		return []string{}
	}
	switch elems[0].Kind {
	case agg.KindInt:
		return mapSlice(elems, func(v agg.Value) int64 { return v.Int })
	case agg.KindFloat:
		return mapSlice(elems, func(v agg.Value) float64 { return v.Float })
	case agg.KindDecimal:
		return mapSlice(elems, func(v agg.Value) *apd.Decimal { return new(apd.Decimal).Set(&v.Dec) })
	case agg.KindDate:
		return mapSlice(elems, func(v agg.Value) mapreduce.Date { return mapreduce.Date(v.Int) })
	case agg.KindTimestamp:
		return mapSlice(elems, func(v agg.Value) time.Time { return time.UnixMicro(v.Int).UTC() })
	}
	return mapSlice(elems, func(v agg.Value) string { return v.Str })
}

func mapSlice[T any](elems []agg.Value, f func(agg.Value) T) []T {
	out := make([]T, len(elems))
	for i, e := range elems {
		out[i] = f(e)
	}
	return out
}

// fieldType is the shuffle and output field type of a kind.
func fieldType(k agg.Kind) mapreduce.Type {
	switch k {
	case agg.KindInt:
		return mapreduce.TypeInt64
	case agg.KindFloat:
		return mapreduce.TypeFloat64
	case agg.KindDecimal:
		return mapreduce.TypeDecimal
	case agg.KindBool:
		return mapreduce.TypeBool
	case agg.KindDate:
		return mapreduce.TypeDate
	case agg.KindTimestamp:
		return mapreduce.TypeTimestamp
	case agg.KindBytes:
		return mapreduce.TypeBytes
	}
	return mapreduce.TypeString
}

// kindSQLType is the PostgreSQL type of the output column of a kind.
func kindSQLType(k agg.Kind) string {
	switch k {
	case agg.KindInt:
		return "bigint"
	case agg.KindFloat:
		return "double precision"
	case agg.KindDecimal:
		return "numeric"
	case agg.KindBool:
		return "boolean"
	case agg.KindDate:
		return "date"
	case agg.KindTimestamp:
		return "timestamp with time zone"
	case agg.KindBytes:
		return "bytea"
	}
	return "text"
}

// elemKind is the element kind of an array result type ("numeric[]").
func elemKind(resultType string) agg.Kind {
	t, err := agg.ParseType(strings.TrimSuffix(resultType, "[]"))
	if err != nil {
		return agg.KindText
	}
	return t.Kind
}

// appendStates appends each state's encoding, prefixed by its length.
func appendStates(b []byte, states []agg.State) ([]byte, error) {
	var enc []byte
	for _, s := range states {
		var err error
		if enc, err = s.AppendBinary(enc[:0]); err != nil {
			return nil, fmt.Errorf("rollup: encode a state: %w", err)
		}
		b = appendBytes(b, enc)
	}
	return b, nil
}

// restore reads a group back from its states column, as the Finalize of
// Options.KeepStates wrote it (see appendStates): the format byte 1, then
// each call's state, prefixed by its length.
func (j *job) restore(d mapreduce.Decoder) (*group, error) {
	if d.Null() {
		return nil, fmt.Errorf("%s is NULL", StatesColumn)
	}
	b := d.Bytes()
	if len(b) == 0 || b[0] != 1 {
		return nil, fmt.Errorf("%s does not begin with its format byte 1", StatesColumn)
	}
	b = b[1:]
	g := &group{states: make([]agg.State, len(j.calls))}
	for i, c := range j.calls {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, fmt.Errorf("%s is cut short at state %d of %d", StatesColumn, i+1, len(j.calls))
		}
		s, err := c.fn.Decode(b[k : k+int(n)])
		if err != nil {
			return nil, fmt.Errorf("%s holds a bad %s state: %w", StatesColumn, c.fn, err)
		}
		g.states[i] = s
		b = b[k+int(n):]
	}
	if len(b) > 0 {
		return nil, fmt.Errorf("%s holds %d bytes past its %d states", StatesColumn, len(b), len(j.calls))
	}
	return g, nil
}
