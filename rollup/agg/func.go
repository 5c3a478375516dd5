package agg

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// Errors. Each is wrapped with the function, the type or the byte offset
// it concerns; match them with errors.Is.
var (
	// ErrUnknownFunction: Resolve does not know the aggregate's name.
	ErrUnknownFunction = errors.New("unknown aggregate function")
	// ErrUnsupportedType: the aggregate does not take an argument of this
	// type (sum(text)), or ParseType does not know the type.
	ErrUnsupportedType = errors.New("unsupported argument type")
	// ErrBadArgument: the wrong number of arguments or parameters, a
	// parameter out of its range (a quantile outside [0, 1]), or, at Add,
	// a Value of another kind than Resolve was told.
	ErrBadArgument = errors.New("bad aggregate argument")
	// ErrOutOfRange: a result that its type cannot hold (a sum of integers
	// beyond bigint, a float sum beyond double precision), or a numeric
	// input beyond PostgreSQL's numeric range. The error concerns one
	// group; it is never a wrapped or clamped value.
	ErrOutOfRange = errors.New("value out of range")
	// ErrCorrupt: Decode was given bytes that are not a state of this
	// function in canonical form.
	ErrCorrupt = errors.New("corrupt aggregate state")
	// ErrMismatch: Merge was given a state of another function.
	ErrMismatch = errors.New("merge of states of different aggregates")
)

// State is the partial aggregate of one group. It folds input values with
// Add, absorbs other partial states with Merge, serializes itself with
// AppendBinary and finalizes with Result. The algebra (see the package
// doc):
//
//	Merge is associative and commutative, and New() is its identity;
//	Add(x) on s is Merge(s, state of {x});
//	equal states encode to equal bytes, and Decode(AppendBinary(s)) = s;
//
// so any grouping and order of Adds and Merges over the same rows gives
// byte-identical encodings and identical Results. A State is not safe for
// concurrent use.
type State interface {
	// Add folds one row: the arguments in order (none for count(*), y then
	// x for corr). SQL NULL semantics apply: a row with a NULL argument is
	// skipped. The Values may be reused once Add returns. An error
	// concerns this row alone (a wrong kind, a numeric beyond PostgreSQL's
	// range) and leaves the state as it was.
	//
	// Add is variadic for the reader's sake; a caller folding many rows
	// passes a slice it reuses (s.Add(args...)), which costs no allocation.
	Add(args ...*Value) error
	// Merge adds other, a state of the same Func, to the receiver; other
	// is unchanged and shares nothing with the receiver afterwards.
	Merge(other State) error
	// AppendBinary appends the state's canonical encoding to b
	// (encoding.BinaryAppender); Func.Decode reads it back. It may compact
	// the state's representation but never changes its value.
	AppendBinary(b []byte) ([]byte, error)
	// Result returns the aggregate's value: PostgreSQL's value and type
	// (see Func.ResultType), NULL where PostgreSQL gives NULL. It does not
	// change the state's value. An error (ErrOutOfRange) concerns this
	// group alone.
	Result() (Value, error)
}

// state is what every State of this package also implements.
type state interface {
	State
	decode(d *decoder)
}

// op is the semantics of a Func, whatever its spelling.
type op uint8

const (
	opCountStar op = iota + 1
	opCount
	opSum
	opAvg
	opVarSamp
	opVarPop
	opStddevSamp
	opStddevPop
	opCorr
	opMin
	opMax
	opApproxCountDistinct
	opApproxQuantile
	opMaxN
	opMinN
	opDistinct // the DISTINCT wrapper: inner says what it aggregates
)

// funcDef is one entry of the function table.
type funcDef struct {
	op    op
	nargs int    // arguments Add takes; count(*) is resolved separately
	takes []Kind // the argument kinds it accepts
	// params describes the constant parameters after the arguments, "" for
	// none; Resolve's error messages quote it.
	params string
}

var (
	numberKinds  = []Kind{KindInt, KindDecimal, KindFloat}
	orderedKinds = []Kind{KindInt, KindDecimal, KindFloat, KindText, KindDate, KindTimestamp}
	anyKinds     = []Kind{KindInt, KindDecimal, KindFloat, KindText, KindBool, KindDate, KindTimestamp, KindBytes}
)

// funcs is the table of aggregate functions, by the names users write.
var funcs = map[string]funcDef{
	"count":                 {op: opCount, nargs: 1, takes: anyKinds},
	"sum":                   {op: opSum, nargs: 1, takes: numberKinds},
	"avg":                   {op: opAvg, nargs: 1, takes: numberKinds},
	"variance":              {op: opVarSamp, nargs: 1, takes: numberKinds},
	"var_samp":              {op: opVarSamp, nargs: 1, takes: numberKinds},
	"var_pop":               {op: opVarPop, nargs: 1, takes: numberKinds},
	"stddev":                {op: opStddevSamp, nargs: 1, takes: numberKinds},
	"stddev_samp":           {op: opStddevSamp, nargs: 1, takes: numberKinds},
	"stddev_pop":            {op: opStddevPop, nargs: 1, takes: numberKinds},
	"corr":                  {op: opCorr, nargs: 2, takes: numberKinds},
	"min":                   {op: opMin, nargs: 1, takes: orderedKinds},
	"max":                   {op: opMax, nargs: 1, takes: orderedKinds},
	"approx_count_distinct": {op: opApproxCountDistinct, nargs: 1, takes: anyKinds},
	"approx_quantile":       {op: opApproxQuantile, nargs: 1, takes: numberKinds, params: "a quantile between 0 and 1"},
	"median":                {op: opApproxQuantile, nargs: 1, takes: numberKinds},
	"max_n":                 {op: opMaxN, nargs: 1, takes: orderedKinds, params: "a count n between 1 and " + strconv.Itoa(MaxN)},
	"min_n":                 {op: opMinN, nargs: 1, takes: orderedKinds, params: "a count n between 1 and " + strconv.Itoa(MaxN)},
}

// MaxN is the largest n of max_n and min_n: a state holds up to n values,
// and one Add may move all of them, so n is bounded to keep both sane.
const MaxN = 10000

// Names returns the names Resolve knows, sorted.
func Names() []string {
	names := make([]string, 0, len(funcs))
	for n := range funcs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Func is a resolved aggregate function: what it computes, over which
// argument types, with which parameters, and its result type. It is
// immutable and safe for concurrent use; its states are not.
type Func struct {
	// Name is the function's name as written, in lower case ("stddev",
	// "median", "count").
	Name string
	// Distinct is whether the argument was written DISTINCT.
	Distinct bool
	// Args are the argument types; none for count(*).
	Args []ArgType
	// Params are the constant parameters: q of approx_quantile, n of
	// max_n and min_n.
	Params []Value

	op         op
	inner      *Func // opDistinct: the aggregate over the distinct values; nil for count
	resultType string
	resultKind Kind
	real       bool // the result is a real (float4)
	intResult  bool // sum(smallint|integer): the exact sum must fit a bigint
	quantile   float64
	n          int
}

// Resolve returns the aggregate name(args) with the constant params, e.g.
//
//	Resolve("sum", false, []ArgType{MustParseType("numeric(12,2)")}, nil)
//	Resolve("count", true, []ArgType{MustParseType("text")}, nil)      // count(DISTINCT x)
//	Resolve("count", false, nil, nil)                                  // count(*)
//	Resolve("approx_quantile", false, []ArgType{t}, []Value{FloatValue(0.99)})
//	Resolve("max_n", false, []ArgType{t}, []Value{IntValue(2)})
//
// An unknown name wraps ErrUnknownFunction; an argument type the function
// does not take wraps ErrUnsupportedType and names both; a wrong number of
// arguments or a bad parameter wraps ErrBadArgument.
func Resolve(name string, distinct bool, args []ArgType, params []Value) (*Func, error) {
	lname := strings.ToLower(strings.TrimSpace(name))
	def, ok := funcs[lname]
	if !ok {
		return nil, fmt.Errorf("agg: %s: %w (mr knows %s)", name, ErrUnknownFunction, strings.Join(Names(), ", "))
	}
	f := &Func{Name: lname, Distinct: distinct, Args: append([]ArgType(nil), args...), Params: append([]Value(nil), params...), op: def.op}
	if def.op == opCount && len(args) == 0 {
		if distinct {
			return nil, fmt.Errorf("agg: count(DISTINCT *): %w: DISTINCT needs an argument", ErrBadArgument)
		}
		f.op = opCountStar
		if len(params) > 0 {
			return nil, fmt.Errorf("agg: count(*) takes no parameters: %w", ErrBadArgument)
		}
		f.resultType, f.resultKind = typeBigint, KindInt
		return f, nil
	}
	if len(args) != def.nargs {
		return nil, fmt.Errorf("agg: %s: %w: takes %d argument(s), got %d", f.signature(), ErrBadArgument, def.nargs, len(args))
	}
	for i, a := range args {
		if a.base() == "" || typeKinds[a.base()] != a.Kind {
			return nil, fmt.Errorf("agg: %s: argument %d: type %q of kind %s: %w", f.signature(), i+1, a.Type, a.Kind, ErrUnsupportedType)
		}
		if !hasKind(def.takes, a.Kind) || (def.op == opMin || def.op == opMax || def.op == opMaxN || def.op == opMinN) && a.base() == typeBoolean {
			return nil, fmt.Errorf("agg: %s: %w: %s does not take %s (it takes %s)", f.signature(), ErrUnsupportedType, lname, a.Type, describeKinds(def.takes))
		}
	}
	if err := f.resolveParams(lname, def); err != nil {
		return nil, err
	}
	f.resolveResult()
	if distinct && def.nargs == 1 {
		switch f.op {
		case opMin, opMax, opApproxCountDistinct:
			// DISTINCT changes nothing: the plain state is the same
			// aggregate, and far smaller than a set of values.
		default:
			inner := *f
			inner.Distinct = false
			f.inner = &inner
			if f.op == opCount {
				f.inner = nil
			}
			f.op = opDistinct
		}
	} else if distinct {
		return nil, fmt.Errorf("agg: %s: %w: DISTINCT is supported for one argument only", f.signature(), ErrBadArgument)
	}
	return f, nil
}

func (f *Func) resolveParams(lname string, def funcDef) error {
	want := 0
	if def.params != "" {
		want = 1
	}
	if len(f.Params) != want {
		if want == 0 {
			return fmt.Errorf("agg: %s: %w: takes no parameters, got %d", f.signature(), ErrBadArgument, len(f.Params))
		}
		return fmt.Errorf("agg: %s: %w: needs %s", f.signature(), ErrBadArgument, def.params)
	}
	switch {
	case lname == "median":
		f.quantile = 0.5
	case def.op == opApproxQuantile:
		q, ok := paramFloat(&f.Params[0])
		if !ok || !(q >= 0 && q <= 1) {
			return fmt.Errorf("agg: %s: %w: the quantile is %s, needs %s", f.signature(), ErrBadArgument, f.Params[0].String(), def.params)
		}
		f.quantile = q
	case def.op == opMaxN || def.op == opMinN:
		p := &f.Params[0]
		if p.Null || p.Kind != KindInt || p.Int < 1 || p.Int > MaxN {
			return fmt.Errorf("agg: %s: %w: n is %s, needs %s", f.signature(), ErrBadArgument, p.String(), def.params)
		}
		f.n = int(p.Int)
	}
	return nil
}

func paramFloat(v *Value) (float64, bool) {
	if v.Null {
		return 0, false
	}
	switch v.Kind {
	case KindFloat:
		return v.Float, true
	case KindInt:
		return float64(v.Int), true
	case KindDecimal:
		f, err := decimalFloat64(&v.Dec)
		return f, err == nil
	}
	return 0, false
}

// resolveResult sets the result type from PostgreSQL 15's catalog
// (pg_aggregate: prorettype of each aggregate's pg_proc row).
func (f *Func) resolveResult() {
	var in ArgType
	if len(f.Args) > 0 {
		in = f.Args[0]
	}
	base := in.base()
	switch f.op {
	case opCount, opApproxCountDistinct:
		f.resultType, f.resultKind = typeBigint, KindInt
	case opSum:
		switch base {
		case typeSmallint, typeInteger:
			f.resultType, f.resultKind, f.intResult = typeBigint, KindInt, true
		case typeBigint, typeNumeric:
			f.resultType, f.resultKind = typeNumeric, KindDecimal
		case typeReal:
			f.resultType, f.resultKind, f.real = typeReal, KindFloat, true
		default:
			f.resultType, f.resultKind = typeDouble, KindFloat
		}
	case opAvg, opVarSamp, opVarPop, opStddevSamp, opStddevPop:
		if in.Kind == KindFloat {
			f.resultType, f.resultKind = typeDouble, KindFloat
		} else {
			f.resultType, f.resultKind = typeNumeric, KindDecimal
		}
	case opCorr, opApproxQuantile:
		f.resultType, f.resultKind = typeDouble, KindFloat
	case opMin, opMax:
		f.resultType, f.resultKind, f.real = minMaxType(base), in.Kind, base == typeReal
	case opMaxN, opMinN:
		f.resultType, f.resultKind, f.real = minMaxType(base)+"[]", KindArray, base == typeReal
	}
}

// minMaxType is the result type of min and max: their input type, except
// that character varying has no min of its own and uses text's.
func minMaxType(base string) string {
	if base == typeVarchar {
		return typeText
	}
	return base
}

func hasKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

var kindTypes = map[Kind]string{
	KindInt:       "smallint, integer, bigint",
	KindDecimal:   "numeric",
	KindFloat:     "real, double precision",
	KindText:      "text, character varying, character",
	KindBool:      "boolean",
	KindDate:      "date",
	KindTimestamp: "timestamp, timestamptz",
	KindBytes:     "bytea",
}

func describeKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = kindTypes[k]
	}
	return strings.Join(s, ", ")
}

// signature is the function with its argument types, as in an error.
func (f *Func) signature() string {
	var b strings.Builder
	b.WriteString(f.Name)
	b.WriteByte('(')
	if f.Distinct {
		b.WriteString("DISTINCT ")
	}
	if len(f.Args) == 0 && (f.op == opCountStar || f.Name == "count") {
		b.WriteByte('*')
	}
	for i, a := range f.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Type)
	}
	for _, p := range f.Params {
		b.WriteString(", ")
		b.WriteString(p.String())
	}
	b.WriteByte(')')
	return b.String()
}

// String is the function with its argument types and parameters, e.g.
// "sum(numeric(12,2))", "count(DISTINCT text)", "approx_quantile(double
// precision, 0.99)".
func (f *Func) String() string { return f.signature() }

// ResultType is the PostgreSQL type of the result: "bigint", "numeric",
// "double precision", "real", "integer[]", … (see the package doc's table).
func (f *Func) ResultType() string { return f.resultType }

// ResultKind is the Kind of the Values that Result returns.
func (f *Func) ResultKind() Kind { return f.resultKind }

// RelativeError is the stated accuracy of an approximate aggregate: the
// relative standard error of approx_count_distinct, the bound on the
// relative error of approx_quantile and median; 0 for the exact ones.
func (f *Func) RelativeError() float64 {
	switch f.op {
	case opApproxCountDistinct:
		return hllStdError
	case opApproxQuantile:
		return quantileAccuracy
	case opDistinct:
		if f.inner != nil {
			return f.inner.RelativeError()
		}
	}
	return 0
}

// StateBytes estimates the memory one state of f holds, for a memory
// budget: the state itself and what it typically points to (a sparse
// sketch's hashes or a DDSketch's bins, a top-n list, a few set members).
func (f *Func) StateBytes() int {
	value := int(unsafe.Sizeof(Value{}))
	size := int(reflect.TypeOf(f.newState()).Elem().Size())
	switch f.op {
	case opMaxN, opMinN:
		size += f.n * value
	case opApproxCountDistinct:
		size += 256 // a few sparse hashes; a dense sketch is 16 KiB
	case opApproxQuantile:
		size += 1024 // a few dozen bins of each store
	case opDistinct:
		size += 8 * (value + 64) // a few members, and their keys in the index
	}
	return size
}

// New returns the empty state: the identity of Merge, whose Result is the
// aggregate of no rows (NULL, or 0 for the counts).
func (f *Func) New() State { return f.newState() }

func (f *Func) newState() state {
	switch f.op {
	case opCountStar, opCount:
		return &countState{f: f}
	case opSum, opAvg, opVarSamp, opVarPop, opStddevSamp, opStddevPop:
		if f.Args[0].Kind == KindFloat {
			return &floatStats{f: f}
		}
		return &decStats{f: f}
	case opCorr:
		return &corrState{f: f}
	case opMin, opMax:
		return &minMaxState{f: f}
	case opMaxN, opMinN:
		return &topNState{f: f}
	case opDistinct:
		return newDistinct(f)
	case opApproxCountDistinct:
		return &hllState{f: f}
	case opApproxQuantile:
		return newQuantile(f)
	}
	panic("agg: unresolved Func") // only Resolve makes Funcs
}

// needsSquares says whether the statistics of f need the sum of squares.
func (f *Func) needsSquares() bool {
	switch f.op {
	case opVarSamp, opVarPop, opStddevSamp, opStddevPop:
		return true
	}
	return false
}

// arg checks the one argument that Add got: it returns it, or nil for a
// NULL (which Add skips) and for a wrong number or kind of arguments,
// with their error.
func (f *Func) arg(args []*Value) (*Value, error) {
	switch {
	case len(args) != 1:
		return nil, f.badArity(len(args))
	case args[0].Null:
		return nil, nil
	case args[0].Kind != f.Args[0].Kind:
		return nil, f.badKind(0, args[0])
	}
	return args[0], nil
}

// normalArg is arg for the states that keep or key on the value: it also
// normalizes it (see normValue), into tmp when it is not normal already,
// so that the common case copies nothing.
func (f *Func) normalArg(args []*Value, tmp *Value) (*Value, error) {
	v, err := f.arg(args)
	if v == nil || isNormal(v) {
		return v, err
	}
	copyValue(tmp, v)
	if err := normValue(tmp); err != nil {
		return nil, err
	}
	return tmp, nil
}

// badKind is Add's error for an argument of the wrong kind.
func (f *Func) badKind(i int, v *Value) error {
	return fmt.Errorf("agg: %s: argument %d is a %s value, want %s: %w", f.signature(), i+1, v.Kind, f.Args[i].Kind, ErrBadArgument)
}

func (f *Func) badArity(n int) error {
	return fmt.Errorf("agg: %s: Add got %d argument(s), want %d: %w", f.signature(), n, len(f.Args), ErrBadArgument)
}

// mergeMismatch is Merge's error for a state of another function.
func (f *Func) mergeMismatch(other State) error {
	return fmt.Errorf("agg: %s: cannot merge a %T: %w", f.signature(), other, ErrMismatch)
}

// checkCount adds two counts of rows, which can overflow only in states
// that were forged or merged with themselves 2^63 times.
func addCount(a, b int64) (int64, error) {
	if b > 0 && a > math.MaxInt64-b {
		return 0, fmt.Errorf("agg: row count overflows int64: %w", ErrOutOfRange)
	}
	return a + b, nil
}
